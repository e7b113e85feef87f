package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// defaultMTU is the underlay MTU when the file leaves network.mtu out.
const defaultMTU = 1500

// The kernel refuses interface names longer than this.
const maxIfaceName = 15

// Router-side link prefixes; pruning in the router namespace only ever
// touches links carrying them.
const (
	subnetBridgePrefix = "s-"
	gatewayVethPrefix  = "g-" // the router's address on a subnet
	gatewayPortPrefix  = "p-" // its other end, a port of the subnet's bridge
	hostVethPrefix     = "h-"
)

// routerLinkPrefixes are the prefixes of every link weft makes in the
// router namespace.
var routerLinkPrefixes = []string{subnetBridgePrefix, gatewayVethPrefix, gatewayPortPrefix, hostVethPrefix}

// namePattern is the shape of cluster, host and subnet names (see naming):
// no dot, no slash, so they cannot escape a path or another cluster's prefix.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// topology is the underlay of one cluster, derived from the file alone.
type topology struct {
	cluster     string
	routerNetns string
	mtu         int
	subnets     []subnetPlan
	hosts       []hostPlan
}

// A subnet is a bridge in the router namespace, whose ports are the hosts'
// legs and one end of the gateway veth pair; the other end of that pair
// carries the router's address. The address is not on the bridge itself:
// every VXLAN segment the router forwarded out of a bridge device was split
// and checksummed in software (half the overlay's throughput, see
// BENCHMARKS.md); out of a veth the segments stay whole.
type subnetPlan struct {
	name       string
	bridge     string       // bridge in the router namespace
	gateway    string       // router-side end of the gateway veth: the router's address
	port       string       // bridge-side end of the gateway veth
	routerAddr netip.Prefix // the router's address: .1 of the subnet, with its length
}

type hostPlan struct {
	name       string
	netns      string
	subnet     string
	bridge     string       // the router bridge of its subnet
	addr       netip.Prefix // eth0 address with the subnet's length
	gateway    netip.Addr   // the router's address on the host's subnet
	routerVeth string       // the router-side end of the host's veth pair
}

// validName reports a user-facing problem with a cluster, host or subnet name.
func validName(field, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%s %q is not a valid name: use lower-case letters, digits and '-', starting with a letter", field, name)
	}
	return nil
}

// subnetLinkName fits prefix+subnet into an interface name, hashing long
// names so that two long subnet names never share a link.
func subnetLinkName(prefix, subnet string) string {
	if len(prefix)+len(subnet) <= maxIfaceName {
		return prefix + subnet
	}
	const hashLen = 6
	keep := maxIfaceName - len(prefix) - hashLen
	return prefix + subnet[:keep] + shortHash(subnet, hashLen)
}

// hostVethName is the router-side end of a host's underlay veth pair.
func hostVethName(cluster, host string) string {
	return hostVethPrefix + shortHash(cluster+"/"+host, maxIfaceName-len(hostVethPrefix))
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// routerAddr is the VPC router's address on a subnet: the first host address.
func routerAddr(subnet netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(subnet.Masked().Addr().Next(), subnet.Bits())
}

// broadcastAddr is the last address of an IPv4 prefix.
func broadcastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	hostBits := 32 - p.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		b[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	return netip.AddrFrom4(b)
}

// planTopology turns the cluster file into the underlay Ensure builds. It
// reports every problem at once, each naming the field and the fix.
func planTopology(c *spec.Cluster) (topology, error) {
	if c == nil {
		return topology{}, errors.New("no cluster given to the lab provider")
	}
	var problems []error
	if err := validName("name", c.Name); err != nil {
		problems = append(problems, err)
	}
	mtu := c.Network.MTU
	if mtu == 0 {
		mtu = defaultMTU
	}
	if mtu < 576 || mtu > 65535 {
		problems = append(problems, fmt.Errorf("network.mtu %d is out of range: use a value between 576 and 65535 (default %d)", c.Network.MTU, defaultMTU))
	}
	topo := topology{
		cluster:     c.Name,
		routerNetns: naming.RouterNetns(c.Name),
		mtu:         mtu,
	}

	subnetIndex := map[string]int{}
	if len(c.Network.Subnets) == 0 {
		problems = append(problems, errors.New("network.subnets is empty: declare at least one subnet, e.g. `a: 192.168.1.0/24`"))
	}
	for i, s := range c.Network.Subnets {
		field := fmt.Sprintf("network.subnets[%d]", i)
		if err := validName(field+" name", s.Name); err != nil {
			problems = append(problems, err)
			continue
		}
		if _, dup := subnetIndex[s.Name]; dup {
			problems = append(problems, fmt.Errorf("%s: subnet %q is declared twice: give each subnet its own name", field, s.Name))
			continue
		}
		if !s.CIDR.IsValid() || !s.CIDR.Addr().Is4() || s.CIDR.Bits() > 29 {
			problems = append(problems, fmt.Errorf("%s %q: cidr %q must be an IPv4 prefix of length /29 or shorter, e.g. 192.168.1.0/24", field, s.Name, s.CIDR))
			continue
		}
		cidr := s.CIDR.Masked()
		if c.Network.CIDR.IsValid() && (!c.Network.CIDR.Contains(cidr.Addr()) || c.Network.CIDR.Bits() > cidr.Bits()) {
			problems = append(problems, fmt.Errorf("%s %q: cidr %s lies outside network.cidr %s: pick a subnet inside it", field, s.Name, cidr, c.Network.CIDR))
		}
		for _, other := range topo.subnets {
			if other.routerAddr.Masked().Overlaps(cidr) {
				problems = append(problems, fmt.Errorf("%s %q: cidr %s overlaps subnet %q (%s): subnets must not overlap", field, s.Name, cidr, other.name, other.routerAddr.Masked()))
			}
		}
		subnetIndex[s.Name] = len(topo.subnets)
		topo.subnets = append(topo.subnets, subnetPlan{
			name:       s.Name,
			bridge:     subnetLinkName(subnetBridgePrefix, s.Name),
			gateway:    subnetLinkName(gatewayVethPrefix, s.Name),
			port:       subnetLinkName(gatewayPortPrefix, s.Name),
			routerAddr: routerAddr(cidr),
		})
	}

	if len(c.Hosts) == 0 {
		problems = append(problems, errors.New("hosts is empty: declare at least one host"))
	}
	hostNames := map[string]bool{}
	addrOwner := map[netip.Addr]string{}
	for i, h := range c.Hosts {
		field := fmt.Sprintf("hosts[%d]", i)
		if err := validName(field+" name", h.Name); err != nil {
			problems = append(problems, err)
			continue
		}
		if hostNames[h.Name] {
			problems = append(problems, fmt.Errorf("%s: host %q is declared twice: give each host its own name", field, h.Name))
			continue
		}
		hostNames[h.Name] = true
		si, ok := subnetIndex[h.Subnet]
		if !ok {
			problems = append(problems, fmt.Errorf("%s %q: subnet %q is not declared under network.subnets (%s): add it there or fix the host's subnet", field, h.Name, h.Subnet, strings.Join(subnetNames(topo.subnets), ", ")))
			continue
		}
		sub := topo.subnets[si]
		cidr := sub.routerAddr.Masked()
		switch {
		case !h.Address.IsValid():
			problems = append(problems, fmt.Errorf("%s %q: address is missing: set an address inside %s (the defaults fill .10, .11, ...)", field, h.Name, cidr))
			continue
		case !cidr.Contains(h.Address):
			problems = append(problems, fmt.Errorf("%s %q: address %s is outside its subnet %q (%s): pick an address inside it", field, h.Name, h.Address, sub.name, cidr))
			continue
		case h.Address == cidr.Addr() || h.Address == broadcastAddr(cidr):
			problems = append(problems, fmt.Errorf("%s %q: address %s is the network or broadcast address of %s: pick another", field, h.Name, h.Address, cidr))
			continue
		case h.Address == sub.routerAddr.Addr():
			problems = append(problems, fmt.Errorf("%s %q: address %s is taken by the lab router of subnet %q: pick another (.10 and up are free)", field, h.Name, h.Address, sub.name))
			continue
		}
		if owner, dup := addrOwner[h.Address]; dup {
			problems = append(problems, fmt.Errorf("%s %q: address %s is already used by host %q: give each host its own address", field, h.Name, h.Address, owner))
			continue
		}
		addrOwner[h.Address] = h.Name
		topo.hosts = append(topo.hosts, hostPlan{
			name:       h.Name,
			netns:      naming.HostNetns(c.Name, h.Name),
			subnet:     sub.name,
			bridge:     sub.bridge,
			addr:       netip.PrefixFrom(h.Address, cidr.Bits()),
			gateway:    sub.routerAddr.Addr(),
			routerVeth: hostVethName(c.Name, h.Name),
		})
	}
	if len(problems) > 0 {
		return topology{}, fmt.Errorf("cluster %q cannot be built by the lab provider:\n%w", c.Name, errors.Join(problems...))
	}
	return topo, nil
}

func subnetNames(subnets []subnetPlan) []string {
	names := make([]string, len(subnets))
	for i, s := range subnets {
		names[i] = s.name
	}
	return names
}
