package agent

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/weft-dev/weft/internal/reach"
	"github.com/weft-dev/weft/internal/spec"
)

func TestWitnessesAndLive(t *testing.T) {
	m := []string{spec.RoleManager}
	c := &spec.Cluster{Hosts: []spec.Host{
		{Name: "host1", Roles: m, Address: netip.MustParseAddr("192.168.1.10")},
		{Name: "host2", Roles: m, Address: netip.MustParseAddr("192.168.2.10")},
		{Name: "host3", Roles: m}, // no address yet: not asked
		{Name: "host4", Address: netip.MustParseAddr("192.168.4.10")},
	}}
	want := map[string]netip.AddrPort{
		"host1": netip.AddrPortFrom(netip.MustParseAddr("192.168.1.10"), reach.Port),
		"host2": netip.AddrPortFrom(netip.MustParseAddr("192.168.2.10"), reach.Port),
	}
	if got := witnessesOf(c); !maps.Equal(got, want) {
		t.Errorf("witnessesOf = %v, want %v (the managers with an address, self included)", got, want)
	}
	if got := managerNames(c); !slices.Equal(got, []string{"host1", "host2", "host3"}) {
		t.Errorf("managerNames = %v", got)
	}
	if got := hostAddrs(c); len(got) != 4 || got["host4"] != netip.MustParseAddr("192.168.4.10") {
		t.Errorf("hostAddrs = %v", got)
	}
	cases := []struct {
		name              string
		live, unreachable map[string]bool
		want              map[string]bool
	}{
		{"all reachable", map[string]bool{"host1": true, "host2": true}, nil, map[string]bool{"host1": true, "host2": true}},
		{"a live host this host cannot reach is left out", map[string]bool{"host1": true, "host2": true}, map[string]bool{"host2": true}, map[string]bool{"host1": true}},
		{"reachability never makes a down host live", map[string]bool{"host1": true}, map[string]bool{}, map[string]bool{"host1": true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := reachableLive(tc.live, tc.unreachable); !maps.Equal(got, tc.want) {
				t.Errorf("reachableLive = %v, want %v", got, tc.want)
			}
		})
	}
}
