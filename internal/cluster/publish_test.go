package cluster

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/publish"
	"github.com/weft-dev/weft/internal/spec"
)

// TestBackendsFor: a VIP publish goes to the VIP, dialled from the router
// namespace; a services publish goes to every instance of those services
// with an address on a host whose agent is up, dialled from its host's
// namespace, on the publish's port.
func TestBackendsFor(t *testing.T) {
	c := &spec.Cluster{Name: "pub", VIPs: []spec.VIP{{Name: "shop", Address: netip.MustParseAddr("192.168.0.100"), Port: 80}}}
	ip := netip.MustParseAddr
	st := api.Status{
		Cluster: "pub",
		Hosts:   []api.HostStatus{{Name: "host1", Agent: "up"}, {Name: "host2", Agent: "up"}, {Name: "host3", Agent: "down"}},
		Containers: []model.ContainerStatus{
			{Container: "gateway-1", Service: "gateway-1", Host: "host1", IP: ip("10.10.0.100")},
			{Container: "gateway-2", Service: "gateway-2", Host: "host2", IP: ip("10.10.0.101")},
			{Container: "registry", Service: "registry", Host: "host3", IP: ip("10.10.0.13")},
			{Container: "web-1", Service: "web", Host: "host1", IP: ip("10.10.0.20")},
			{Container: "web-2", Service: "web", Host: "host2"}, // no address yet
			{Container: "api-1", Service: "api", Host: "host2", IP: ip("10.10.0.30")},
		},
	}
	tests := []struct {
		name string
		pub  spec.Publish
		want []publish.Backend
	}{
		{
			name: "vip",
			pub:  spec.Publish{Listen: "127.0.0.1:8080", VIP: "shop"},
			want: []publish.Backend{{Name: "vip-shop", Addr: netip.MustParseAddrPort("192.168.0.100:80"), Netns: "weft.pub.router"}},
		},
		{
			name: "unknown vip",
			pub:  spec.Publish{Listen: "127.0.0.1:8080", VIP: "nope"},
		},
		{
			name: "services",
			pub:  spec.Publish{Listen: "127.0.0.1:8080", Services: []string{"gateway-1", "gateway-2"}, Port: 80},
			want: []publish.Backend{
				{Name: "gateway-1", Addr: netip.MustParseAddrPort("10.10.0.100:80"), Netns: "weft.pub.h.host1"},
				{Name: "gateway-2", Addr: netip.MustParseAddrPort("10.10.0.101:80"), Netns: "weft.pub.h.host2"},
			},
		},
		{
			name: "instances without an address",
			pub:  spec.Publish{Listen: "127.0.0.1:9000", Services: []string{"web"}, Port: 8080},
			want: []publish.Backend{{Name: "web-1", Addr: netip.MustParseAddrPort("10.10.0.20:8080"), Netns: "weft.pub.h.host1"}},
		},
		{
			name: "only host is down",
			pub:  spec.Publish{Listen: "127.0.0.1:5000", Services: []string{"registry"}, Port: 5000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backendsFor(c, st, tt.pub); !slices.Equal(got, tt.want) {
				t.Errorf("backendsFor = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPublishTarget(t *testing.T) {
	tests := []struct {
		pub  spec.Publish
		want string
	}{
		{spec.Publish{VIP: "shop"}, "VIP shop"},
		{spec.Publish{Services: []string{"gateway-1", "gateway-2"}}, "gateway-1, gateway-2"},
	}
	for _, tt := range tests {
		if got := publishTarget(tt.pub); got != tt.want {
			t.Errorf("publishTarget(%+v) = %q, want %q", tt.pub, got, tt.want)
		}
	}
}
