package firewall

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Config is what one host's firewall is made from: who the members are,
// the ports to guard, and the containers of this host. The zero Config is
// no firewall: Set removes weft's tables.
type Config struct {
	Members   []netip.Addr // underlay addresses of the cluster's hosts, this one included
	Managers  []netip.Addr // the hosts that carry an etcd member (a subset of Members)
	Operators []netip.Addr // other sources allowed to the etcd client port (the lab router, where the chaos runner reads the store)

	VXLANPort  uint16   // the overlay's UDP port
	ClientPort uint16   // etcd clients
	PeerPort   uint16   // etcd peers
	ProbePorts []uint16 // UDP ports on the underlay address only members may send to: VIP and reachability probes
	DNSPort    uint16   // the host's resolver, on BridgeAddr (UDP and TCP)

	Bridge     string     // the overlay bridge: everything from a container enters the host through it
	BridgeAddr netip.Addr // the host's address on it, where the resolver listens

	Containers []Container // this host's containers
}

// Container is one local container as the firewall sees it.
type Container struct {
	Name string           // for error messages
	Veth string           // host end of its veth pair (naming.HostVeth)
	IP   netip.Addr       // the only source address it may send from
	MAC  net.HardwareAddr // the only source MAC it may send from
}

// VethPrefix is the prefix every container's host-side veth has
// (naming.HostVeth): a port of the bridge with this prefix that belongs to
// no container sends nothing.
const VethPrefix = "vw"

// Off reports whether c asks for no firewall.
func (c Config) Off() bool { return len(c.Members) == 0 }

// Validate checks c and names every field that is wrong and how to fix it.
func (c Config) Validate() error {
	if c.Off() {
		return nil
	}
	var problems []error
	addrs := func(field string, list []netip.Addr) {
		for _, a := range list {
			if !a.Is4() {
				problems = append(problems, fmt.Errorf("firewall %s: %v is not an IPv4 address: give the hosts' underlay addresses", field, a))
			}
		}
	}
	addrs("Members", c.Members)
	addrs("Managers", c.Managers)
	addrs("Operators", c.Operators)
	for field, p := range map[string]uint16{"VXLANPort": c.VXLANPort, "ClientPort": c.ClientPort, "PeerPort": c.PeerPort, "DNSPort": c.DNSPort} {
		if p == 0 {
			problems = append(problems, fmt.Errorf("firewall %s is 0: give the port (1..65535) the service listens on", field))
		}
	}
	for i, p := range c.ProbePorts {
		if p == 0 {
			problems = append(problems, fmt.Errorf("firewall ProbePorts[%d] is 0: give the UDP port (1..65535) the probes go to", i))
		}
	}
	if c.Bridge == "" || len(c.Bridge) > 15 {
		problems = append(problems, fmt.Errorf("firewall Bridge %q is not an interface name: give the overlay bridge's name", c.Bridge))
	}
	if !c.BridgeAddr.Is4() {
		problems = append(problems, fmt.Errorf("firewall BridgeAddr %v is not an IPv4 address: give the host's address on the bridge", c.BridgeAddr))
	}
	veths := map[string]string{}
	for i, ct := range c.Containers {
		field := fmt.Sprintf("firewall Containers[%d] (%s)", i, ct.Name)
		if !strings.HasPrefix(ct.Veth, VethPrefix) || len(ct.Veth) > 15 {
			problems = append(problems, fmt.Errorf("%s: veth %q does not start with %q: use naming.HostVeth", field, ct.Veth, VethPrefix))
		}
		if other, dup := veths[ct.Veth]; dup {
			problems = append(problems, fmt.Errorf("%s: veth %s is also %s's: every container has its own", field, ct.Veth, other))
		}
		veths[ct.Veth] = ct.Name
		if !ct.IP.Is4() {
			problems = append(problems, fmt.Errorf("%s: IP %v is not an IPv4 address: give its overlay address", field, ct.IP))
		}
		if len(ct.MAC) != 6 || ct.MAC[0]&1 != 0 {
			problems = append(problems, fmt.Errorf("%s: MAC %q is not a unicast Ethernet address: use naming.MACFromIP", field, ct.MAC))
		}
	}
	return errors.Join(problems...)
}
