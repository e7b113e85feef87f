package lab

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
)

// A router namespace with one leg on 192.168.1.0/24 is enough to move a VIP.
func TestRouteAnnouncerReplacesOneRoute(t *testing.T) {
	requireRoot(t)
	cluster := uniqueCluster(t)
	name := naming.RouterNetns(cluster)
	ns, err := nsthread.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		_ = netns.DeleteNamed(name)
	})
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	leg := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "leg0"}, PeerName: "leg1"}
	if err := h.LinkAdd(leg); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"leg0", "leg1"} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		if n == "leg0" {
			addr, _ := netlink.ParseAddr("192.168.1.1/24")
			if err := h.AddrAdd(l, addr); err != nil {
				t.Fatal(err)
			}
		}
	}

	ctx := context.Background()
	a := RouteAnnouncer{Cluster: cluster}
	vip := netip.MustParseAddr("192.168.0.100")
	one, two := netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("192.168.1.11")
	if _, ok, err := a.Target(ctx, vip); err != nil || ok {
		t.Fatalf("Target before Announce = %v, %v; want no route", ok, err)
	}
	for _, holder := range []netip.Addr{one, two, two} {
		if err := a.Announce(ctx, vip, holder); err != nil {
			t.Fatalf("Announce via %s: %v", holder, err)
		}
		if got, ok, err := a.Target(ctx, vip); err != nil || !ok || got != holder {
			t.Fatalf("Target = %s %v %v; want %s", got, ok, err, holder)
		}
		routes, _ := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: &net.IPNet{IP: net.IP(vip.AsSlice()), Mask: net.CIDRMask(32, 32)}}, netlink.RT_FILTER_DST)
		if len(routes) != 1 {
			t.Fatalf("%d routes for the VIP, want exactly one", len(routes))
		}
	}
	// A late withdraw by the old holder leaves the new route alone.
	if err := a.Withdraw(ctx, vip, one); err != nil {
		t.Fatalf("Withdraw by the old holder: %v", err)
	}
	if got, ok, _ := a.Target(ctx, vip); !ok || got != two {
		t.Fatalf("after a stale withdraw the VIP goes to %s (%v), want %s", got, ok, two)
	}
	// Active-active: one multipath route to both, then to one, then none.
	if err := a.Announce(ctx, vip, one, two); err != nil {
		t.Fatalf("Announce via both: %v", err)
	}
	if got, err := a.Targets(ctx, vip); err != nil || !slices.Equal(got, []netip.Addr{one, two}) {
		t.Fatalf("Targets = %v, %v; want [%s %s]", got, err, one, two)
	}
	if err := a.Announce(ctx, vip, two); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Targets(ctx, vip); !slices.Equal(got, []netip.Addr{two}) {
		t.Fatalf("Targets after dropping one = %v, want [%s]", got, two)
	}
	if err := a.Announce(ctx, vip); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Targets(ctx, vip); len(got) != 0 {
		t.Fatalf("Targets after announcing no holder = %v, want none", got)
	}
	if err := a.Announce(ctx, vip, two); err != nil {
		t.Fatal(err)
	}
	if err := a.Withdraw(ctx, vip, two); err != nil {
		t.Fatalf("Withdraw: %v", err)
	}
	if _, ok, _ := a.Target(ctx, vip); ok {
		t.Fatalf("route still there after Withdraw")
	}
}
