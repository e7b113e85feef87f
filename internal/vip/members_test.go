package vip

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestRouted(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	a, b, c := netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("192.168.2.10"), netip.MustParseAddr("192.168.3.10")
	cases := []struct {
		name    string
		members []Member
		want    []netip.Addr
	}{
		{"nobody", nil, nil},
		{"self fresh, other renewing", []Member{{Addr: b, Seen: now.Add(-100 * time.Millisecond)}, {Addr: a, Self: true, Fresh: true}}, []netip.Addr{a, b}},
		{"self not fresh is left out", []Member{{Addr: a, Self: true}, {Addr: b, Seen: now}}, []netip.Addr{b}},
		{"a silent member is dropped after the fence", []Member{{Addr: a, Self: true, Fresh: true}, {Addr: b, Seen: now.Add(-Fence - Margin)}}, []netip.Addr{a}},
		{"a member just under the fence stays", []Member{{Addr: a, Self: true, Fresh: true}, {Addr: c, Seen: now.Add(-Fence)}}, []netip.Addr{a, c}},
		{"released members are left out", []Member{{Addr: a, Self: true, Fresh: true}, {Addr: b, Seen: now, Released: true}}, []netip.Addr{a}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Routed(tc.members, now); !slices.Equal(got, tc.want) {
				t.Errorf("Routed = %v, want %v", got, tc.want)
			}
		})
	}
}
