package compose

import (
	"net/netip"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"
)

// weft has one overlay network: every compose network a service joins is
// that overlay (documented in docs/compose.md), and a network's ipam subnet
// is the overlay's CIDR when x-weft gives none (overlayCIDR).

// pinnedIP maps networks.NAME.ipv4_address to a pinned overlay address.
func (t *translation) pinnedIP(path string, nets map[string]*types.ServiceNetworkConfig) netip.Addr {
	names := make([]string, 0, len(nets))
	for name := range nets {
		names = append(names, name)
	}
	sort.Strings(names)
	var ip netip.Addr
	var from string
	for _, name := range names {
		n := nets[name]
		if n == nil || n.Ipv4Address == "" {
			continue
		}
		field := path + ".networks." + name + ".ipv4_address"
		a, err := netip.ParseAddr(n.Ipv4Address)
		switch {
		case err != nil || !a.Is4():
			t.add(field, n.Ipv4Address, "not an IPv4 address", "write e.g. 10.10.0.5")
		case ip.IsValid() && a != ip:
			t.add(field, n.Ipv4Address, "weft has one overlay: a container has one address, and "+from+" gives another",
				"give the same ipv4_address on every network, or only on one")
		default:
			ip, from = a, field
		}
	}
	if from != "" {
		t.from(path+".ip", from)
	}
	return ip
}

// overlayCIDR is the one subnet the compose networks' ipam gives, if any.
func (t *translation) overlayCIDR(nets types.Networks) netip.Prefix {
	names := make([]string, 0, len(nets))
	for name := range nets {
		names = append(names, name)
	}
	sort.Strings(names)
	var cidr netip.Prefix
	var from string
	for _, name := range names {
		for i, pool := range nets[name].Ipam.Config {
			if pool == nil || pool.Subnet == "" {
				continue
			}
			field := "networks." + name + ".ipam.config[" + itoa(i) + "].subnet"
			p, err := netip.ParsePrefix(pool.Subnet)
			switch {
			case err != nil:
				t.add(field, pool.Subnet, "not a CIDR", "write e.g. 10.10.0.0/16")
			case cidr.IsValid() && p != cidr:
				t.add(field, pool.Subnet, "weft has one overlay network, and "+from+" gives another subnet",
					"give every network the same subnet, or set x-weft.overlay.cidr")
			default:
				cidr, from = p, field
			}
		}
	}
	if from != "" {
		t.from("overlay.cidr", from)
	}
	return cidr
}
