package compose

import (
	"net/netip"

	"github.com/compose-spec/compose-go/v2/types"
)

// weft has one overlay network: every compose network a service joins is
// that overlay (documented in docs/compose.md), and a network's ipam subnet
// is the overlay's CIDR when x-weft gives none (overlayCIDR).

// pinnedIP maps networks.NAME.ipv4_address to a pinned overlay address.
func (t *translation) pinnedIP(path string, nets map[string]*types.ServiceNetworkConfig) netip.Addr {
	var ip single[netip.Addr]
	for _, name := range sortedKeys(nets) {
		n := nets[name]
		if n == nil || n.Ipv4Address == "" {
			continue
		}
		a, err := netip.ParseAddr(n.Ipv4Address)
		ok := err == nil && a.Is4()
		ip.offer(t, path+".networks."+name+".ipv4_address", n.Ipv4Address, a, ok,
			"not an IPv4 address", "write e.g. 10.10.0.5",
			"weft has one overlay: a container has one address", "give the same ipv4_address on every network, or only on one")
	}
	if ip.from != "" {
		t.from(path+".ip", ip.from)
	}
	return ip.value
}

// overlayCIDR is the one subnet the compose networks' ipam gives, if any.
func (t *translation) overlayCIDR(nets types.Networks) netip.Prefix {
	var cidr single[netip.Prefix]
	for _, name := range sortedKeys(nets) {
		for i, pool := range nets[name].Ipam.Config {
			if pool == nil || pool.Subnet == "" {
				continue
			}
			p, err := netip.ParsePrefix(pool.Subnet)
			cidr.offer(t, "networks."+name+".ipam.config["+itoa(i)+"].subnet", pool.Subnet, p, err == nil,
				"not a CIDR", "write e.g. 10.10.0.0/16",
				"weft has one overlay network and another network gives another subnet", "give every network the same subnet, or set x-weft.overlay.cidr")
		}
	}
	if cidr.from != "" {
		t.from("overlay.cidr", cidr.from)
	}
	return cidr.value
}

// single is a value that several compose fields may give, all alike.
type single[T comparable] struct {
	value T
	from  string // the first field that gave it
}

// offer takes v from field unless it is invalid (ok false) or differs from
// the value an earlier field gave; either is reported.
func (s *single[T]) offer(t *translation, field, raw string, v T, ok bool, badMsg, badFix, conflictMsg, conflictFix string) {
	switch {
	case !ok:
		t.add(field, raw, badMsg, badFix)
	case s.from != "" && v != s.value:
		t.add(field, raw, conflictMsg+" ("+s.from+" gives another)", conflictFix)
	case s.from == "":
		s.value, s.from = v, field
	}
}
