package reach

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"testing"
	"time"
)

// labHost is one host of a loopback cluster: each host has an address of
// its own in 127.0.0.0/8, so that witnesses tell hosts apart by source
// address as they do on the underlay.
type labHost struct {
	name    string
	addr    netip.Addr
	witness *Witness
	wconn   net.PacketConn
	monitor *Monitor
	stop    context.CancelFunc // stops the monitor and witness: the host is cut
}

func listenOn(t *testing.T, a netip.Addr) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		t.Skipf("binding %s (needs 127.0.0.0/8 on lo): %v", a, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWitnessesOverLoopback(t *testing.T) {
	const interval, limit = 20 * time.Millisecond, 3
	names := []string{"m1", "m2", "m3", "w1", "w2"}
	managers := []string{"m1", "m2", "m3"}
	hosts := map[string]*labHost{}
	addrs := map[string]netip.Addr{}
	for i, n := range names {
		h := &labHost{name: n, addr: netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)})}
		hosts[n], addrs[n] = h, h.addr
	}
	witnesses := map[string]netip.AddrPort{}
	for _, m := range managers {
		h := hosts[m]
		h.witness = NewWitness(m, interval, limit)
		h.witness.SetHosts(addrs, managers)
		h.wconn = listenOn(t, h.addr)
		witnesses[m] = h.wconn.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(h *labHost, wconn net.PacketConn) {
		hctx, stop := context.WithCancel(ctx)
		h.stop = stop
		h.monitor = NewMonitor(h.name, Heartbeat, interval, limit)
		h.monitor.SetWitnesses(witnesses)
		if h.witness != nil {
			go func() { _ = h.witness.Serve(hctx, wconn) }()
		}
		go func() { _ = h.monitor.Run(hctx, listenOn(t, h.addr)) }()
	}
	for _, n := range names {
		start(hosts[n], hosts[n].wconn)
	}
	unreachable := func(from string) map[string]bool { return hosts[from].monitor.Unreachable() }
	is := func(from string, want ...string) func() bool {
		return func() bool {
			w := map[string]bool{}
			for _, h := range want {
				w[h] = true
			}
			return maps.Equal(unreachable(from), w)
		}
	}

	// Whole: nobody unreachable from anywhere, for many intervals.
	time.Sleep(3 * interval * limit)
	for range 20 {
		for _, n := range names {
			if u := unreachable(n); len(u) != 0 {
				t.Fatalf("%s finds %v unreachable in a whole cluster", n, u)
			}
		}
		time.Sleep(interval / 2)
	}

	// A worker cut: every other host finds it unreachable, with its last
	// time; the cut worker itself reaches no manager and reports nobody.
	hosts["w2"].stop()
	cut := time.Now()
	for _, n := range []string{"m1", "m2", "m3", "w1"} {
		waitFor(t, n+" finds w2 unreachable", is(n, "w2"))
	}
	if s, ok := hosts["w1"].monitor.SilentSince()["w2"]; !ok || s.After(cut.Add(interval)) {
		t.Errorf("w1's SilentSince[w2] = %v (%v), want a time before the cut at %v", s, ok, cut)
	}

	// A manager cut (its witness too): unreachable for everyone left, and
	// w2 stays unreachable by the two witnesses still quorate.
	hosts["m2"].stop()
	for _, n := range []string{"m1", "m3", "w1"} {
		waitFor(t, n+" finds m2 and w2 unreachable", is(n, "m2", "w2"))
	}

	// The worker back: reachable again for everyone, m2 still not.
	start(hosts["w2"], nil)
	for _, n := range []string{"m1", "m3", "w1", "w2"} {
		waitFor(t, n+" finds only m2 unreachable", is(n, "m2"))
	}

	// A second manager cut: no majority anywhere, nobody reports anything.
	hosts["m3"].stop()
	for _, n := range []string{"m1", "w1", "w2"} {
		waitFor(t, n+" reports nobody once it reaches no majority", is(n))
	}
	select {
	case <-hosts["w1"].monitor.Changes():
	default:
		t.Errorf("no change signalled on w1")
	}
}
