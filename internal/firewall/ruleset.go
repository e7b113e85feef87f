package firewall

import (
	"net/netip"
	"slices"
)

// TableName is the name of weft's firewall tables (one inet, one bridge) in
// a host's network namespace. Other weft tables (VIP delivery, faults) have
// names of their own and are never touched.
const TableName = "weft-fw"

// Named counters of dropped packets, in the order `weft status` shows them.
const (
	CounterVXLAN   = "vxlan_foreign"     // VXLAN from an address that is no member host
	CounterControl = "control_foreign"   // etcd or probe ports from an address that may not use them
	CounterToHost  = "container_to_host" // a container (of any host) to this host, other than DNS
	CounterRouted  = "container_routed"  // a container routed out through this host (to the underlay)
	CounterSpoofed = "spoofed"           // a frame from a veth with another source IP or MAC than its container's
)

// CounterNames lists every counter, in the order `weft status` shows them.
func CounterNames() []string {
	return []string{CounterVXLAN, CounterControl, CounterToHost, CounterRouted, CounterSpoofed}
}

// Set names of the inet table.
const (
	setMembers  = "members"  // may send VXLAN and VIP probes
	setManagers = "managers" // may reach the etcd peer port
	setClients  = "clients"  // may reach the etcd client port: members and operators
)

// Build turns c into the tables weft wants in the host's namespace; none
// when c is Off. It is pure.
func Build(c Config) []Table {
	if c.Off() {
		return nil
	}
	return []Table{hostTable(c), bridgeTable(c)}
}

func sortedAddrs(lists ...[]netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}

// hostTable guards what reaches the host and what it forwards:
//
//	chain input (hook input): from the bridge, replies and DNS to the
//	  bridge address pass and everything else is dropped; from anywhere,
//	  VXLAN only from members, etcd clients only from members and
//	  operators, etcd peers only from managers, VIP and reachability probes
//	  only from members
//	chain forward (hook forward): from the bridge out of another
//	  interface, only replies
//	chains notrack-in, notrack-out (hooks prerouting and output, raw
//	  priority -300): VXLAN skips connection tracking. Nothing matches its
//	  state, and tracking every encapsulated segment both ways cost the
//	  overlay about 5% of its throughput.
func hostTable(c Config) Table {
	br := IfName{Name: c.Bridge}
	input := []Rule{
		{Match: []Match{br, Established{}}, Verdict: Accept},
		{Match: []Match{br, IPv4{}, Addr{Addr: c.BridgeAddr}, Dport{"udp", c.DNSPort}}, Verdict: Accept},
		{Match: []Match{br, IPv4{}, Addr{Addr: c.BridgeAddr}, Dport{"tcp", c.DNSPort}}, Verdict: Accept},
		{Match: []Match{br}, Counter: CounterToHost, Verdict: Drop},
		{Match: []Match{IPv4{}, Dport{"udp", c.VXLANPort}, SaddrIn{Set: setMembers, Not: true}}, Counter: CounterVXLAN, Verdict: Drop},
		{Match: []Match{IPv4{}, Dport{"tcp", c.ClientPort}, SaddrIn{Set: setClients, Not: true}}, Counter: CounterControl, Verdict: Drop},
		{Match: []Match{IPv4{}, Dport{"tcp", c.PeerPort}, SaddrIn{Set: setManagers, Not: true}}, Counter: CounterControl, Verdict: Drop},
	}
	for _, p := range c.ProbePorts {
		input = append(input, Rule{Match: []Match{IPv4{}, Dport{"udp", p}, SaddrIn{Set: setMembers, Not: true}}, Counter: CounterControl, Verdict: Drop})
	}
	notrack := []Rule{{Match: []Match{IPv4{}, Dport{"udp", c.VXLANPort}}, Verdict: NoTrack}}
	out := IfName{Out: true, Name: c.Bridge, Not: true}
	forward := []Rule{
		{Match: []Match{br, out, Established{}}, Verdict: Accept},
		{Match: []Match{br, out}, Counter: CounterRouted, Verdict: Drop},
	}
	return Table{
		Family:   Inet,
		Name:     TableName,
		Counters: []string{CounterControl, CounterRouted, CounterToHost, CounterVXLAN},
		Sets: []Set{
			{Name: setClients, Elems: sortedAddrs(c.Members, c.Operators)},
			{Name: setManagers, Elems: sortedAddrs(c.Managers)},
			{Name: setMembers, Elems: sortedAddrs(c.Members)},
		},
		Chains: []Chain{
			{Name: "notrack-in", Hook: "prerouting", Priority: -300, Rules: notrack},
			{Name: "notrack-out", Hook: "output", Priority: -300, Rules: notrack},
			{Name: "input", Hook: "input", Priority: 0, Rules: input},
			{Name: "forward", Hook: "forward", Priority: 0, Rules: forward},
		},
	}
}

// bridgeTable lets every container send only from its own address and MAC:
//
//	chain pre (hook prerouting, priority -200): frames not from a veth
//	  pass; a container's veth jumps to its chain; any other veth drops
//	chain <veth>: other source MAC, other IPv4 source, ARP claiming another
//	  MAC or address, or any ether type but IPv4 and ARP: drop; else accept
func bridgeTable(c Config) Table {
	cts := slices.Clone(c.Containers)
	slices.SortFunc(cts, func(a, b Container) int {
		if a.Veth < b.Veth {
			return -1
		}
		if a.Veth > b.Veth {
			return 1
		}
		return 0
	})
	pre := []Rule{{Match: []Match{IfName{Name: VethPrefix + "*", Not: true}}, Verdict: Accept}}
	chains := []Chain{{Name: "pre", Hook: "prerouting", Priority: -200}}
	for _, ct := range cts {
		pre = append(pre, Rule{Match: []Match{IfName{Name: ct.Veth}}, Verdict: Jump(ct.Veth)})
		mac := macString(ct.MAC)
		chains = append(chains, Chain{Name: ct.Veth, Rules: []Rule{
			{Match: []Match{EtherSaddr{MAC: mac, Not: true}}, Counter: CounterSpoofed, Verdict: Drop},
			{Match: []Match{EtherType{Type: EtherIPv4}, Addr{Src: true, Addr: ct.IP, Not: true}}, Counter: CounterSpoofed, Verdict: Drop},
			{Match: []Match{EtherType{Type: EtherARP}, ARPSender{MAC: mac, Not: true}}, Counter: CounterSpoofed, Verdict: Drop},
			{Match: []Match{EtherType{Type: EtherARP}, ARPSender{IP: ct.IP, Not: true}}, Counter: CounterSpoofed, Verdict: Drop},
			{Match: []Match{EtherType{Type: EtherIPv4, Not: true}, EtherType{Type: EtherARP, Not: true}}, Counter: CounterSpoofed, Verdict: Drop},
			{Verdict: Accept},
		}})
	}
	pre = append(pre, Rule{Match: []Match{IfName{Name: VethPrefix + "*"}}, Counter: CounterSpoofed, Verdict: Drop})
	chains[0].Rules = pre
	return Table{Family: Bridge, Name: TableName, Counters: []string{CounterSpoofed}, Chains: chains}
}
