package reach

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"sync"
	"time"
)

// magic starts every probe and answer, so that stray datagrams are ignored.
var magic = [4]byte{'w', 'r', 'c', 'h'}

func encode(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(magic[:], seq)
}

func decode(b []byte) (uint64, bool) {
	if len(b) != 12 || [4]byte(b[:4]) != magic {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[4:]), true
}

// Serve answers probes on conn until ctx ends: every probe is sent back as
// it came.
func Serve(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 64)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading reachability probes: %w", err)
		}
		if _, ok := decode(buf[:n]); ok {
			_, _ = conn.WriteTo(buf[:n], from)
		}
	}
}

// Monitor probes a set of peers and keeps which of them are unreachable.
type Monitor struct {
	interval time.Duration
	limit    int

	mu      sync.Mutex
	peers   map[string]netip.AddrPort
	tracks  map[string]*track
	down    map[string]bool
	changed chan struct{}
}

// NewMonitor makes a monitor that probes every interval and calls a peer
// unreachable after limit misses in a row.
func NewMonitor(interval time.Duration, limit int) *Monitor {
	return &Monitor{interval: interval, limit: limit, peers: map[string]netip.AddrPort{},
		tracks: map[string]*track{}, down: map[string]bool{}, changed: make(chan struct{}, 1)}
}

// SetPeers sets the peers to probe, by name. A new peer starts reachable;
// a peer whose address changed starts again; a removed one is forgotten.
func (m *Monitor) SetPeers(peers map[string]netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for name := range m.peers {
		if addr, ok := peers[name]; !ok || addr != m.peers[name] {
			delete(m.tracks, name)
			if m.down[name] {
				delete(m.down, name)
				changed = true
			}
		}
	}
	m.peers = maps.Clone(peers)
	for name := range m.peers {
		if m.tracks[name] == nil {
			m.tracks[name] = &track{}
		}
	}
	if changed {
		m.signal()
	}
}

// Unreachable is the set of peers that stopped answering (a copy).
func (m *Monitor) Unreachable() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.down)
}

// SilentSince gives, for each unreachable peer that answered at least once,
// when its last answer came: the last this host heard of it.
func (m *Monitor) SilentSince() map[string]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]time.Time{}
	for name := range m.down {
		if t := m.tracks[name]; t != nil && !t.heard.IsZero() {
			out[name] = t.heard
		}
	}
	return out
}

// Changes receives a value (coalesced) whenever a peer turns unreachable or
// reachable again.
func (m *Monitor) Changes() <-chan struct{} { return m.changed }

func (m *Monitor) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// update recomputes who is down, under m.mu.
func (m *Monitor) update() {
	changed := false
	for name, t := range m.tracks {
		if now := t.unreachable(m.limit); now != m.down[name] {
			changed = true
			if now {
				m.down[name] = true
			} else {
				delete(m.down, name)
			}
		}
	}
	if changed {
		m.signal()
	}
}

// Run probes every peer every interval from conn and reads the answers,
// until ctx ends.
func (m *Monitor) Run(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		tick := time.NewTicker(m.interval)
		defer tick.Stop()
		for {
			m.mu.Lock()
			type send struct {
				to  netip.AddrPort
				seq uint64
			}
			var sends []send
			for name, t := range m.tracks {
				sends = append(sends, send{m.peers[name], t.probe()})
			}
			m.update()
			m.mu.Unlock()
			for _, s := range sends {
				_, _ = conn.WriteTo(encode(s.seq), net.UDPAddrFromAddrPort(s.to))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	buf := make([]byte, 64)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading reachability answers: %w", err)
		}
		seq, ok := decode(buf[:n])
		ua, isUDP := from.(*net.UDPAddr)
		if !ok || !isUDP {
			continue
		}
		addr := ua.AddrPort()
		addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
		m.mu.Lock()
		for name, p := range m.peers {
			if p == addr {
				m.tracks[name].answer(seq, time.Now())
			}
		}
		m.update()
		m.mu.Unlock()
	}
}
