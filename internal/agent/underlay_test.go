package agent

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/spec"
)

func TestOverlayMTUFitsTheUnderlay(t *testing.T) {
	c := &spec.Cluster{Overlay: spec.Overlay{MTU: 1450}}
	for _, tt := range []struct {
		iface, want int
	}{
		{1500, 1450}, // the lab: eth0 carries network.mtu
		{9001, 1450}, // a jumbo interface keeps the file's overlay MTU
		{1460, 1410}, // a smaller interface (a cloud's 1460) lowers it
	} {
		if got := overlayMTU(c, underlayLink{Name: "eth0", MTU: tt.iface}); got != tt.want {
			t.Errorf("interface MTU %d: overlay MTU %d, want %d", tt.iface, got, tt.want)
		}
	}
}

// The interface holding an address is found in the namespace the agent
// runs in (here: loopback of the test's own).
func TestFindUnderlay(t *testing.T) {
	here, err := netns.Get()
	if err != nil {
		t.Skip(err)
	}
	defer here.Close()
	u, err := findUnderlay(here, netip.MustParseAddr("127.0.0.1"))
	if err != nil || u.Name != "lo" || u.MTU <= 0 {
		t.Errorf("findUnderlay(127.0.0.1) = %+v, %v; want lo with its MTU", u, err)
	}
	if _, err := findUnderlay(here, netip.MustParseAddr("192.0.2.77")); err == nil {
		t.Error("an address no interface holds was found")
	}
}
