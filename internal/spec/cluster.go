package spec

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// ReservedBlockSize is how many addresses at the top of the overlay CIDR weft
// keeps for itself (the hosts' bridge addresses); containers never get them.
const ReservedBlockSize = 256

// MaxHosts is the most hosts a cluster can have: one bridge address each in
// the reserved block, without its first (.0) and last (broadcast) address.
const MaxHosts = ReservedBlockSize - 2

// HostByName returns the host called name.
func (c *Cluster) HostByName(name string) (Host, bool) {
	i := slices.IndexFunc(c.Hosts, func(h Host) bool { return h.Name == name })
	if i < 0 {
		return Host{}, false
	}
	return c.Hosts[i], true
}

// ServiceByName returns the service called name.
func (c *Cluster) ServiceByName(name string) (Service, bool) {
	i := slices.IndexFunc(c.Services, func(s Service) bool { return s.Name == name })
	if i < 0 {
		return Service{}, false
	}
	return c.Services[i], true
}

// SubnetByName returns the underlay subnet called name.
func (c *Cluster) SubnetByName(name string) (Subnet, bool) {
	i := slices.IndexFunc(c.Network.Subnets, func(s Subnet) bool { return s.Name == name })
	if i < 0 {
		return Subnet{}, false
	}
	return c.Network.Subnets[i], true
}

// Managers returns the hosts that carry an etcd member, in file order.
func (c *Cluster) Managers() []Host {
	var out []Host
	for _, h := range c.Hosts {
		if h.IsManager() {
			out = append(out, h)
		}
	}
	return out
}

// FirewallOn reports whether the hosts run weft's firewall: the file's
// `firewall`, true when left out.
func (c *Cluster) FirewallOn() bool { return c.Firewall == nil || *c.Firewall }

// UserNSOn reports whether the service's containers run in a user
// namespace: its `userns`, true when left out (for an image too: its
// files are unpacked owned in the cluster's map).
func (s Service) UserNSOn() bool {
	return s.UserNS == nil || *s.UserNS
}

// IsManager reports whether the host carries an etcd member.
func (h Host) IsManager() bool { return slices.Contains(h.Roles, RoleManager) }

// RouterAddr is the first usable address (.1) of the subnet: the lab router's
// leg in it and its hosts' default gateway. Invalid if the subnet is unknown.
func (c *Cluster) RouterAddr(subnet string) netip.Addr {
	s, ok := c.SubnetByName(subnet)
	if !ok || !isIPv4Prefix(s.CIDR) {
		return netip.Addr{}
	}
	return s.CIDR.Addr().Next()
}

// HostOverlayAddr is the host bridge's address on the overlay (its DNS
// server listens there): host i in file order (from 0) gets the reserved
// block's first address + i + 1, e.g. 10.10.255.1 for the first host of
// 10.10.0.0/16. Invalid if the host is unknown.
func (c *Cluster) HostOverlayAddr(host string) netip.Addr {
	i := slices.IndexFunc(c.Hosts, func(h Host) bool { return h.Name == host })
	if i < 0 || !isIPv4Prefix(c.Overlay.CIDR) {
		return netip.Addr{}
	}
	return addOffset(reservedStart(c.Overlay.CIDR), uint32(i+1))
}

// IsReserved reports whether ip is an overlay address containers never get:
// the network address, the broadcast address and the reserved block (the last
// 256 addresses of the overlay CIDR).
func (c *Cluster) IsReserved(ip netip.Addr) bool {
	cidr := c.Overlay.CIDR
	if !isIPv4Prefix(cidr) || !ip.Is4() || !cidr.Contains(ip) {
		return false
	}
	return ip == cidr.Addr() || ip.Compare(reservedStart(cidr)) >= 0
}

// ReservedRange returns the first and last address of the reserved block.
func (c *Cluster) ReservedRange() (first, last netip.Addr) {
	if !isIPv4Prefix(c.Overlay.CIDR) {
		return netip.Addr{}, netip.Addr{}
	}
	return reservedStart(c.Overlay.CIDR), lastAddr(c.Overlay.CIDR)
}

// ContainerCount is the number of containers the file asks for.
func (c *Cluster) ContainerCount() int {
	n := 0
	for _, s := range c.Services {
		n += max(s.Replicas, 0)
	}
	return n
}

func toUint32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromUint32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func addOffset(a netip.Addr, offset uint32) netip.Addr {
	return fromUint32(toUint32(a) + offset)
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	hostBits := 32 - p.Bits()
	return fromUint32(toUint32(p.Masked().Addr()) | uint32(uint64(1)<<hostBits-1))
}

func isIPv4Prefix(p netip.Prefix) bool { return p.IsValid() && p.Addr().Is4() }

// reservedStart is the first address of the reserved block; a prefix too
// small to hold the block (refused by Validate) is reserved entirely.
func reservedStart(p netip.Prefix) netip.Addr {
	if 32-p.Bits() < 8 {
		return p.Masked().Addr()
	}
	return fromUint32(toUint32(lastAddr(p)) - (ReservedBlockSize - 1))
}
