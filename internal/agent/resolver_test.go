package agent

import (
	"maps"
	"net/netip"
	"testing"

	"github.com/weft-dev/weft/internal/reach"
	"github.com/weft-dev/weft/internal/spec"
)

func TestReachPeersAndLive(t *testing.T) {
	c := &spec.Cluster{Hosts: []spec.Host{
		{Name: "host1", Address: netip.MustParseAddr("192.168.1.10")},
		{Name: "host2", Address: netip.MustParseAddr("192.168.2.10")},
		{Name: "host3"}, // no address yet: not probed
	}}
	want := map[string]netip.AddrPort{"host2": netip.AddrPortFrom(netip.MustParseAddr("192.168.2.10"), reach.Port)}
	if got := reachPeers(c, "host1"); !maps.Equal(got, want) {
		t.Errorf("reachPeers = %v, want %v (never self, only hosts with an address)", got, want)
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
