package reach

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Witness runs on a manager: it hears the hosts' heartbeats and answers each
// with a digest of the hosts it has not heard from for limit intervals.
type Witness struct {
	self     string
	interval time.Duration
	limit    int
	now      func() time.Time

	mu       sync.Mutex
	listed   map[string]time.Time  // host -> when it was first listed
	hosts    map[netip.Addr]string // underlay address -> host
	managers []string
	heard    map[string]time.Time // host -> its last heartbeat
	cached   Digest               // the last digest computed, Seq unset
	cachedAt time.Time
}

// NewWitness makes the witness of manager self, with the heartbeat interval
// and the misses that make a host silent.
func NewWitness(self string, interval time.Duration, limit int) *Witness {
	return newWitness(self, interval, limit, time.Now)
}

func newWitness(self string, interval time.Duration, limit int, now func() time.Time) *Witness {
	return &Witness{self: self, interval: interval, limit: limit, now: now,
		listed: map[string]time.Time{}, hosts: map[netip.Addr]string{}, heard: map[string]time.Time{}}
}

// SetHosts sets the hosts to witness (name -> underlay address) and which of
// them are managers. A host no longer listed is forgotten; a new one is
// silent only after limit intervals without a heartbeat from its listing.
func (w *Witness) SetHosts(hosts map[string]netip.Addr, managers []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	byAddr := make(map[netip.Addr]string, len(hosts))
	for name, addr := range hosts {
		if addr.IsValid() {
			byAddr[addr.Unmap()] = name
		}
		if _, ok := w.listed[name]; !ok {
			w.listed[name] = now
		}
	}
	for name := range w.listed {
		if _, ok := hosts[name]; !ok {
			delete(w.listed, name)
			delete(w.heard, name)
		}
	}
	if !slices.Equal(w.managers, managers) || !maps.Equal(byAddr, w.hosts) {
		w.cachedAt = time.Time{}
	}
	w.hosts = byAddr
	w.managers = slices.Clone(managers)
}

// hear takes a heartbeat from addr.
func (w *Witness) hear(from netip.Addr, kind Kind) {
	if kind != Heartbeat {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if name, ok := w.hosts[from.Unmap()]; ok {
		w.heard[name] = w.now()
	}
}

// digest is the answer to heartbeat seq. It is computed at most every
// quarter interval, so that answering n hosts costs O(n) per interval, not
// O(n²).
func (w *Witness) digest(seq uint64) Digest {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if w.cachedAt.IsZero() || now.Sub(w.cachedAt) >= w.interval/4 || now.Before(w.cachedAt) {
		w.cached, w.cachedAt = w.compute(now), now
	}
	d := w.cached
	d.Seq = seq
	return d
}

// compute is the digest at now, under w.mu: every listed host not heard
// for limit intervals (the witness's own host is always heard: its resolver
// is this process), and whether the witness hears a majority of the
// managers.
func (w *Witness) compute(now time.Time) Digest {
	window := w.interval * time.Duration(w.limit)
	silent := func(name string) (bool, Silence) {
		if name == w.self {
			return false, Silence{}
		}
		last, heard := w.heard[name]
		if !heard {
			// Never heard: timed from its listing, with no last time to give.
			last = w.listed[name]
		}
		if now.Sub(last) < window {
			return false, Silence{}
		}
		return true, Silence{Host: name, Ago: now.Sub(last), Heard: heard}
	}
	var d Digest
	names := make([]string, 0, len(w.hosts))
	for _, name := range w.hosts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if s, info := silent(name); s {
			d.Silent = append(d.Silent, info)
		}
	}
	heardManagers := 0
	for _, m := range w.managers {
		if s, _ := silent(m); !s {
			heardManagers++
		}
	}
	d.Quorate = len(w.managers) > 0 && heardManagers*2 > len(w.managers)
	return d
}

// Serve takes heartbeats on conn and answers each with the digest until ctx
// ends.
func (w *Witness) Serve(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 64)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading heartbeats: %w", err)
		}
		seq, kind, ok := decodeHeartbeat(buf[:n])
		ua, isUDP := from.(*net.UDPAddr)
		if !ok || !isUDP {
			continue
		}
		w.hear(ua.AddrPort().Addr(), kind)
		_, _ = conn.WriteTo(encodeDigest(w.digest(seq)), from)
	}
}
