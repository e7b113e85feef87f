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

func TestReachesQuorum(t *testing.T) {
	m := []string{spec.RoleManager}
	c := &spec.Cluster{Hosts: []spec.Host{{Name: "host1", Roles: m}, {Name: "host2", Roles: m}, {Name: "host3", Roles: m}, {Name: "host4"}}}
	cases := []struct {
		name        string
		self        string
		unreachable map[string]bool
		want        bool
	}{
		{"everyone reached", "host1", nil, true},
		{"one member away (the leader cut): still a majority", "host1", map[string]bool{"host2": true}, true},
		{"two members away (quorum lost): keep the last answers", "host1", map[string]bool{"host2": true, "host3": true}, false},
		{"a worker that reaches no member is cut off itself", "host4", map[string]bool{"host1": true, "host2": true, "host3": true}, false},
		{"a worker away does not count", "host1", map[string]bool{"host4": true}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := reachesQuorum(c, tc.self, tc.unreachable); got != tc.want {
				t.Errorf("reachesQuorum = %v, want %v", got, tc.want)
			}
		})
	}
}
