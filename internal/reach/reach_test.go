package reach

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestTrack(t *testing.T) {
	// Each step: "p" sends a probe, "a" answers the latest, "o" answers an
	// older one (late), then the expected state after the step.
	cases := []struct {
		name  string
		steps string
		want  []bool // unreachable after each step, limit 3
	}{
		{"answered probes never miss", "papapa", []bool{false, false, false, false, false, false}},
		{"three unanswered probes make a peer unreachable at the fourth", "pppp", []bool{false, false, false, true}},
		{"one answer makes it reachable again", "ppppa", []bool{false, false, false, true, false}},
		{"a late answer to an older probe does not count", "ppppop", []bool{false, false, false, true, true, true}},
		{"misses must be in a row", "pppapppp", []bool{false, false, false, false, false, false, false, true}},
	}
	t.Run("heard is the time of the last counted answer", func(t *testing.T) {
		var tr track
		t0 := time.Unix(100, 0)
		tr.probe()
		tr.answer(1, t0)
		tr.probe()
		tr.answer(1, t0.Add(time.Second)) // late: not counted
		if !tr.heard.Equal(t0) {
			t.Errorf("heard = %v, want %v", tr.heard, t0)
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tr track
			var old uint64
			for i, step := range tc.steps {
				switch step {
				case 'p':
					old = tr.seq
					tr.probe()
				case 'a':
					tr.answer(tr.seq, time.Now())
				case 'o':
					tr.answer(old, time.Now())
				}
				if got := tr.unreachable(3); got != tc.want[i] {
					t.Fatalf("after step %d (%c) of %q: unreachable %v, want %v", i, step, tc.steps, got, tc.want[i])
				}
			}
		})
	}
}

func listen(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func addrOf(pc net.PacketConn) netip.AddrPort {
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMonitorOverLoopback(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	answering := listen(t)
	go func() { _ = Serve(ctx, answering) }()
	silent := listen(t) // bound, never answers
	m := NewMonitor(20*time.Millisecond, 3)
	m.SetPeers(map[string]netip.AddrPort{"up": addrOf(answering), "mute": addrOf(silent)})
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, listen(t)) }()

	waitFor(t, "the silent peer unreachable", func() bool { return m.Unreachable()["mute"] })
	if s := m.SilentSince(); len(s) != 0 {
		t.Errorf("SilentSince = %v, want nothing: the silent peer never answered", s)
	}
	select {
	case <-m.Changes():
	default:
		t.Errorf("no change signalled when a peer turned unreachable")
	}
	for range 10 { // the answering peer stays reachable for many probes
		if m.Unreachable()["up"] {
			t.Fatalf("a peer that answers every probe was called unreachable: %v", m.Unreachable())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The silent peer starts answering: reachable again.
	sctx, scancel := context.WithCancel(ctx)
	go func() { _ = Serve(sctx, silent) }()
	waitFor(t, "the peer reachable again once it answers", func() bool { return !m.Unreachable()["mute"] })

	// Removing a peer forgets it.
	started := time.Now()
	scancel()
	waitFor(t, "unreachable again once it stops", func() bool { return m.Unreachable()["mute"] })
	seen := time.Now()
	// Its last answer came while it served, at least one missed probe
	// before it was seen unreachable.
	heard, ok := m.SilentSince()["mute"]
	if !ok || heard.Before(started.Add(-5*time.Second)) || !heard.Before(seen.Add(-20*time.Millisecond)) {
		t.Errorf("SilentSince[mute] = %v (%v), want its last answer, before %v", heard, ok, seen)
	}
	if _, ok := m.SilentSince()["up"]; ok {
		t.Errorf("SilentSince has the answering peer: %v", m.SilentSince())
	}
	m.SetPeers(map[string]netip.AddrPort{"up": addrOf(answering)})
	if m.Unreachable()["mute"] {
		t.Errorf("a removed peer is still reported: %v", m.Unreachable())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

func TestDecodeIgnoresStrays(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("hello"), append([]byte("xxxx"), make([]byte, 8)...), append(encode(7), 0)} {
		if _, ok := decode(b); ok {
			t.Errorf("decode(%q) accepted a stray datagram", b)
		}
	}
	if seq, ok := decode(encode(42)); !ok || seq != 42 {
		t.Errorf("decode(encode(42)) = %d, %v", seq, ok)
	}
}
