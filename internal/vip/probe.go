package vip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ProbePort is the UDP port every agent answers VIP probes on, on its
// underlay address.
const ProbePort = 7947

// A probe is a datagram "seq(8) name"; the answer is "seq(8) held(1)
// epoch(8)". held is 1 while the answering agent holds the VIP named: it
// delivers it, or its last renewal is less than Grace old and it is still
// renewing; 0 otherwise.

// Holding tells a probe server whether this host holds a VIP now, and in
// which epoch.
type Holding func(vip string) (epoch int64, held bool)

// ServeProbes answers probes on conn until ctx ends.
func ServeProbes(ctx context.Context, conn net.PacketConn, holding Holding) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 512)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading VIP probes: %w", err)
		}
		if n < 9 {
			continue
		}
		epoch, held := holding(string(buf[8:n]))
		out := make([]byte, 0, 17)
		out = append(out, buf[:8]...)
		if held {
			out = append(out, 1)
		} else {
			out = append(out, 0)
		}
		out = binary.BigEndian.AppendUint64(out, uint64(epoch))
		_, _ = conn.WriteTo(out, from)
	}
}

// Prober probes one VIP's holder every Interval and counts consecutive
// misses: no answer within the interval, or an answer saying "not held".
type Prober struct {
	VIP      string
	Interval time.Duration

	mu     sync.Mutex
	target netip.AddrPort
	misses int
	lastOK time.Time
}

// SetTarget makes the prober probe target from now on (zero: stop
// probing). A new target starts with no misses.
func (p *Prober) SetTarget(target netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if target != p.target {
		p.target, p.misses, p.lastOK = target, 0, time.Time{}
	}
}

// State is the current target, its consecutive misses and the last time it
// answered "held".
func (p *Prober) State() (target netip.AddrPort, misses int, lastOK time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target, p.misses, p.lastOK
}

func (p *Prober) record(target netip.AddrPort, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if target != p.target {
		return
	}
	if ok {
		p.misses, p.lastOK = 0, time.Now()
	} else {
		p.misses++
	}
}

// Run probes until ctx ends, from conn (a UDP socket of this host's
// namespace that Run owns and closes).
func (p *Prober) Run(ctx context.Context, conn *net.UDPConn) {
	defer conn.Close()
	var seq uint64
	buf := make([]byte, 64)
	tick := time.NewTicker(p.Interval)
	defer tick.Stop()
	for {
		target, _, _ := p.State()
		if target.IsValid() {
			seq++
			p.record(target, probeOnce(conn, target, p.VIP, seq, p.Interval, buf))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probeOnce sends one probe and waits up to timeout for its answer.
func probeOnce(conn *net.UDPConn, target netip.AddrPort, vip string, seq uint64, timeout time.Duration, buf []byte) bool {
	msg := binary.BigEndian.AppendUint64(nil, seq)
	msg = append(msg, vip...)
	deadline := time.Now().Add(timeout * 9 / 10)
	if _, err := conn.WriteToUDPAddrPort(msg, target); err != nil {
		return false
	}
	_ = conn.SetReadDeadline(deadline)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false
			}
			if time.Now().After(deadline) {
				return false
			}
			continue // e.g. ICMP port unreachable from an earlier probe
		}
		if n < 17 || from.Addr().Unmap() != target.Addr() || binary.BigEndian.Uint64(buf[:8]) != seq {
			continue // a late answer to an earlier probe
		}
		return buf[8] == 1
	}
}
