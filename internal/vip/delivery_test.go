package vip

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/nsthread/nstest"
)

func scratchNetns(t *testing.T) netns.NsHandle { return nstest.Scratch(t, "weft-viptest") }

func TestDeliveryLiveExpiresAndFences(t *testing.T) {
	ns := scratchNetns(t)
	d := Delivery{Table: "weft_vip", NetNS: int(ns)}
	vip := netip.MustParseAddr("192.168.0.100")
	rules := []Rule{{VIP: vip, Port: 80, Target: netip.MustParseAddrPort("10.10.0.100:80")}}
	if err := d.Set(rules); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := d.Set(rules); err != nil {
		t.Fatalf("Set again: %v", err)
	}
	// Undelivered packets for the VIP are dropped in forward, not routed on.
	c, err := d.conn()
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := c.GetRules(d.table(), &nftables.Chain{Name: "fwd", Table: d.table()})
	if err != nil || len(fwd) != 1 {
		t.Fatalf("fwd chain rules = %d, %v; want one drop rule", len(fwd), err)
	}
	if v, ok := fwd[0].Exprs[len(fwd[0].Exprs)-1].(*expr.Verdict); !ok || v.Kind != expr.VerdictDrop {
		t.Fatalf("fwd rule ends with %#v, want drop", fwd[0].Exprs[len(fwd[0].Exprs)-1])
	}
	if live, err := d.LiveVIPs(); err != nil || len(live) != 0 {
		t.Fatalf("live after Set = %v, %v; want none", live, err)
	}
	if err := d.Live(vip, 300*time.Millisecond); err != nil {
		t.Fatalf("Live: %v", err)
	}
	if err := d.Live(vip, 300*time.Millisecond); err != nil {
		t.Fatalf("Live again (refresh): %v", err)
	}
	if live, err := d.LiveVIPs(); err != nil || !slices.Equal(live, []netip.Addr{vip}) {
		t.Fatalf("live = %v, %v; want [%s]", live, err, vip)
	}
	// Nobody refreshes: the kernel drops the element by itself.
	deadline := time.Now().Add(5 * time.Second)
	for {
		live, err := d.LiveVIPs()
		if err != nil {
			t.Fatal(err)
		}
		if len(live) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VIP still live 5s after a 300ms timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.Live(vip, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := d.Fence(vip); err != nil {
		t.Fatalf("Fence: %v", err)
	}
	if err := d.Fence(vip); err != nil {
		t.Fatalf("Fence of a fenced VIP: %v", err)
	}
	if live, _ := d.LiveVIPs(); len(live) != 0 {
		t.Fatalf("live after Fence = %v", live)
	}
	if err := d.Set(nil); err != nil {
		t.Fatalf("Set(nil): %v", err)
	}
	if err := d.Set(nil); err != nil {
		t.Fatalf("Set(nil) without a table: %v", err)
	}
}
