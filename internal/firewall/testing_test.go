package firewall

import (
	"net/netip"

	"github.com/weft-dev/weft/internal/naming"
)

// sampleConfig is a host of a three-host cluster (two managers) running two
// containers, as the agent builds it.
func sampleConfig() Config {
	a := netip.MustParseAddr
	return Config{
		Members:    []netip.Addr{a("192.168.2.10"), a("192.168.1.10"), a("192.168.3.10")},
		Managers:   []netip.Addr{a("192.168.1.10"), a("192.168.2.10")},
		Operators:  []netip.Addr{a("192.168.1.1")},
		VXLANPort:  4789,
		ClientPort: 2379,
		PeerPort:   2380,
		ProbePorts: []uint16{7947, 7948},
		DNSPort:    53,
		Bridge:     "br-vxlan",
		BridgeAddr: a("10.10.0.1"),
		Containers: []Container{
			{Name: "web-1", Veth: naming.HostVeth("web-1"), IP: a("10.10.0.9"), MAC: naming.MACFromIP(a("10.10.0.9"))},
			{Name: "api-1", Veth: naming.HostVeth("api-1"), IP: a("10.10.0.5"), MAC: naming.MACFromIP(a("10.10.0.5"))},
		},
	}
}
