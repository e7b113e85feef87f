package reach

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Monitor sends the witnesses (the managers) a heartbeat or a query every
// interval, reads their digests, and keeps which hosts are unreachable from
// here (verdict), recomputed once per interval.
type Monitor struct {
	self     string
	kind     Kind
	interval time.Duration
	limit    int

	mu        sync.Mutex
	witnesses map[string]netip.AddrPort
	tracks    map[string]*track
	digests   map[string]received
	down      map[string]bool
	since     map[string]time.Time
	changed   chan struct{}
}

type received struct {
	d  Digest
	at time.Time
}

// NewMonitor makes the monitor of host self, sending kind (Heartbeat from
// the host's resolver, Query from anyone else) every interval; a witness
// that missed limit answers in a row is unreachable.
func NewMonitor(self string, kind Kind, interval time.Duration, limit int) *Monitor {
	return &Monitor{self: self, kind: kind, interval: interval, limit: limit,
		witnesses: map[string]netip.AddrPort{}, tracks: map[string]*track{}, digests: map[string]received{},
		down: map[string]bool{}, since: map[string]time.Time{}, changed: make(chan struct{}, 1)}
}

// SetWitnesses sets the managers' witnesses, by host name (self included
// when it is a manager). A new witness starts reachable; one whose address
// changed starts again; a removed one is forgotten.
func (m *Monitor) SetWitnesses(witnesses map[string]netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for name, addr := range m.witnesses {
		if now, ok := witnesses[name]; !ok || now != addr {
			delete(m.tracks, name)
			delete(m.digests, name)
			changed = true
		}
	}
	m.witnesses = maps.Clone(witnesses)
	for name := range m.witnesses {
		if m.tracks[name] == nil {
			m.tracks[name] = &track{}
			changed = true
		}
	}
	if changed {
		m.update()
	}
}

// Unreachable is the set of hosts unreachable from here (a copy); empty
// while this host reaches no majority of the managers.
func (m *Monitor) Unreachable() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.down)
}

// SilentSince gives, for each unreachable host that was heard at least
// once, when it was last heard: by this host (a manager) or by the latest
// witness that heard it (any other host).
func (m *Monitor) SilentSince() map[string]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.since)
}

// Changes receives a value (coalesced) whenever a host turns unreachable or
// reachable again.
func (m *Monitor) Changes() <-chan struct{} { return m.changed }

// update recomputes the verdict, under m.mu.
func (m *Monitor) update() {
	views := make(map[string]witnessView, len(m.witnesses))
	for name := range m.witnesses {
		t := m.tracks[name]
		v := witnessView{reachable: !t.unreachable(m.limit), heard: t.heard}
		if r, ok := m.digests[name]; ok {
			v.digest, v.digestAt = &r.d, r.at
		}
		views[name] = v
	}
	down, since := verdict(m.self, views)
	m.since = since
	if !maps.Equal(down, m.down) {
		m.down = down
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}
}

// Run sends to every witness every interval from conn and reads the
// digests, until ctx ends.
func (m *Monitor) Run(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		tick := time.NewTicker(m.interval)
		defer tick.Stop()
		type send struct {
			to  netip.AddrPort
			seq uint64
		}
		var sends []send
		for {
			sends = sends[:0]
			m.mu.Lock()
			for name, t := range m.tracks {
				sends = append(sends, send{m.witnesses[name], t.probe()})
			}
			m.update()
			m.mu.Unlock()
			for _, s := range sends {
				_, _ = conn.WriteTo(encodeHeartbeat(s.seq, m.kind), net.UDPAddrFromAddrPort(s.to))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading digests: %w", err)
		}
		d, ok := decodeDigest(buf[:n])
		ua, isUDP := from.(*net.UDPAddr)
		if !ok || !isUDP {
			continue
		}
		addr := ua.AddrPort()
		addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
		now := time.Now()
		m.mu.Lock()
		for name, w := range m.witnesses {
			if w == addr && m.tracks[name].answer(d.Seq, now) {
				m.digests[name] = received{d, now}
			}
		}
		m.mu.Unlock()
	}
}
