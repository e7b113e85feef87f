package vip

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestProbesCountMissesAndAnswers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held atomic.Bool
	held.Store(true)
	go func() {
		_ = ServeProbes(ctx, srv, func(vip string) (int64, bool) { return 7, vip == "shop" && held.Load() })
	}()
	cli, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &Prober{VIP: "shop", Interval: 20 * time.Millisecond}
	go p.Run(ctx, cli)
	target := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	p.SetTarget(target)

	waitFor := func(what string, cond func(misses int, lastOK time.Time) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, misses, lastOK := p.State()
			if cond(misses, lastOK) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: misses=%d lastOK=%v", what, misses, lastOK)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("an answering holder", func(m int, ok time.Time) bool { return m == 0 && !ok.IsZero() })
	held.Store(false)
	waitFor("a holder that says it does not hold counts as misses", func(m int, _ time.Time) bool { return m >= MissLimit })
	held.Store(true)
	waitFor("answers again reset the misses", func(m int, _ time.Time) bool { return m == 0 })
	// A silent target: nothing listens there.
	dead, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	deadAddr := dead.LocalAddr().(*net.UDPAddr).AddrPort()
	dead.Close()
	p.SetTarget(deadAddr)
	if tgt, m, _ := p.State(); tgt != deadAddr || m != 0 {
		t.Fatalf("a new target starts with no misses, got %s %d", tgt, m)
	}
	waitFor("a silent target misses", func(m int, _ time.Time) bool { return m >= MissLimit })
	p.SetTarget(netip.AddrPort{})
}
