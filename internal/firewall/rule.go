package firewall

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Family is an nftables table family weft uses.
type Family string

// The two families of the firewall: inet filters what reaches the host and
// what the host forwards; bridge sees every frame a container puts on the
// bridge, before it is bridged or delivered.
const (
	Inet   Family = "inet"
	Bridge Family = "bridge"
)

// Table is one nftables table as weft wants it. It is a plain value: Build
// makes it from a Config, the kernel side turns it into netlink messages,
// and its Shape is what Set compares with the kernel.
type Table struct {
	Family   Family
	Name     string
	Counters []string // named counters, sorted
	Sets     []Set    // named sets of IPv4 addresses
	Chains   []Chain  // base chains first, in the order they are written
}

// Set is a named set of IPv4 addresses (type ipv4_addr), elements sorted.
type Set struct {
	Name  string
	Elems []netip.Addr
}

// Chain is a chain and its rules; Hook "" is a regular chain (a jump target).
type Chain struct {
	Name     string
	Hook     string // prerouting | input | forward | output | ""
	Priority int    // of a base chain
	Rules    []Rule
}

// Rule is every Match, then the named Counter (if any), then the Verdict.
type Rule struct {
	Match   []Match
	Counter string
	Verdict Verdict
}

// Verdict ends a rule: Accept, Drop, a jump to the chain named, or NoTrack
// (a statement rather than a verdict: the packet skips connection tracking
// and goes on through the chain).
type Verdict struct {
	Kind  string // accept | drop | jump | notrack
	Chain string // of a jump
}

// The verdicts.
var (
	Accept  = Verdict{Kind: "accept"}
	Drop    = Verdict{Kind: "drop"}
	NoTrack = Verdict{Kind: "notrack"}
)

// Jump is the verdict that runs chain and comes back.
func Jump(chain string) Verdict { return Verdict{Kind: "jump", Chain: chain} }

func (v Verdict) String() string {
	if v.Kind == "jump" {
		return "jump " + v.Chain
	}
	return v.Kind
}

// String is the rule in nft syntax. It is also the rule's key: it is stored
// with the rule in the kernel (as its user data) and compared on every Set.
func (r Rule) String() string {
	parts := make([]string, 0, len(r.Match)+2)
	for _, m := range r.Match {
		parts = append(parts, m.String())
	}
	if r.Counter != "" {
		parts = append(parts, fmt.Sprintf("counter name %q", r.Counter))
	}
	return strings.Join(append(parts, r.Verdict.String()), " ")
}

// Match is one condition of a rule. Every implementation is a comparable
// value with its nft syntax as String; exprs.go turns each into netlink
// expressions.
type Match interface {
	String() string
	isMatch()
}

func not(neg bool) string {
	if neg {
		return "!= "
	}
	return ""
}

// IfName matches the input (or Out: output) interface's name; a trailing
// "*" matches a prefix.
type IfName struct {
	Out  bool
	Name string
	Not  bool
}

func (m IfName) String() string {
	key := "iifname"
	if m.Out {
		key = "oifname"
	}
	return fmt.Sprintf("%s %s%q", key, not(m.Not), m.Name)
}

// IPv4 matches IPv4 packets in an inet table (meta nfproto ipv4), so that
// the IPv4 header can be read.
type IPv4 struct{}

func (IPv4) String() string { return "meta nfproto ipv4" }

// Dport matches a TCP or UDP destination port.
type Dport struct {
	Proto string // tcp | udp
	Port  uint16
}

func (m Dport) String() string { return fmt.Sprintf("%s dport %d", m.Proto, m.Port) }

// Addr matches the IPv4 source (Src) or destination address.
type Addr struct {
	Src  bool
	Addr netip.Addr
	Not  bool
}

func (m Addr) String() string {
	key := "ip daddr"
	if m.Src {
		key = "ip saddr"
	}
	return fmt.Sprintf("%s %s%s", key, not(m.Not), m.Addr)
}

// SaddrIn matches an IPv4 source address in (or Not in) a named set.
type SaddrIn struct {
	Set string
	Not bool
}

func (m SaddrIn) String() string { return fmt.Sprintf("ip saddr %s@%s", not(m.Not), m.Set) }

// Established matches packets of connections the other side started, and
// errors about them (ct state established,related).
type Established struct{}

func (Established) String() string { return "ct state established,related" }

// The ether types the firewall names.
const (
	EtherIPv4 uint16 = 0x0800
	EtherARP  uint16 = 0x0806
)

// EtherType matches the frame's ether type (bridge family).
type EtherType struct {
	Type uint16
	Not  bool
}

func (m EtherType) String() string {
	name := fmt.Sprintf("0x%04x", m.Type)
	switch m.Type {
	case EtherIPv4:
		name = "ip"
	case EtherARP:
		name = "arp"
	}
	return fmt.Sprintf("ether type %s%s", not(m.Not), name)
}

// EtherSaddr matches the frame's source MAC (bridge family). MAC is a
// string so that the match stays comparable; net.HardwareAddr.String form.
type EtherSaddr struct {
	MAC string
	Not bool
}

func (m EtherSaddr) String() string { return fmt.Sprintf("ether saddr %s%s", not(m.Not), m.MAC) }

// ARPSender matches the sender hardware address (MAC set) or the sender
// protocol address (IP set) of an Ethernet/IPv4 ARP packet.
type ARPSender struct {
	MAC string
	IP  netip.Addr
	Not bool
}

func (m ARPSender) String() string {
	if m.MAC != "" {
		return fmt.Sprintf("arp saddr ether %s%s", not(m.Not), m.MAC)
	}
	return fmt.Sprintf("arp saddr ip %s%s", not(m.Not), m.IP)
}

func (IfName) isMatch()      {}
func (IPv4) isMatch()        {}
func (Dport) isMatch()       {}
func (Addr) isMatch()        {}
func (SaddrIn) isMatch()     {}
func (Established) isMatch() {}
func (EtherType) isMatch()   {}
func (EtherSaddr) isMatch()  {}
func (ARPSender) isMatch()   {}

// macString is the canonical text of a MAC for EtherSaddr and ARPSender.
func macString(mac net.HardwareAddr) string { return mac.String() }

// Shape is everything of a table that Set compares with the kernel: names,
// hooks, rules as text, set elements. Counter values are not part of it.
type Shape struct {
	Family   Family
	Name     string
	Counters []string
	Sets     map[string][]string
	Chains   []ChainShape
}

// ChainShape is a chain's part of a Shape.
type ChainShape struct {
	Name     string
	Hook     string
	Priority int
	Rules    []string
}

// Shape of the table as the kernel would report it.
func (t Table) Shape() Shape {
	s := Shape{Family: t.Family, Name: t.Name, Counters: slices.Sorted(slices.Values(t.Counters)), Sets: map[string][]string{}}
	for _, set := range t.Sets {
		elems := make([]string, 0, len(set.Elems))
		for _, a := range set.Elems {
			elems = append(elems, a.String())
		}
		slices.Sort(elems)
		s.Sets[set.Name] = elems
	}
	for _, c := range t.Chains {
		cs := ChainShape{Name: c.Name, Hook: c.Hook, Priority: c.Priority}
		for _, r := range c.Rules {
			cs.Rules = append(cs.Rules, r.String())
		}
		s.Chains = append(s.Chains, cs)
	}
	s.normalize()
	return s
}

// normalize sorts chains by name: the kernel lists them in its own order.
func (s *Shape) normalize() {
	slices.SortFunc(s.Chains, func(a, b ChainShape) int { return strings.Compare(a.Name, b.Name) })
	if s.Counters == nil {
		s.Counters = []string{}
	}
	for i := range s.Chains {
		if s.Chains[i].Rules == nil {
			s.Chains[i].Rules = []string{}
		}
	}
	for k, v := range s.Sets {
		if v == nil {
			s.Sets[k] = []string{}
		}
	}
}

// Equal says whether two shapes are the same table.
func (s Shape) Equal(o Shape) bool {
	s.normalize()
	o.normalize()
	if s.Family != o.Family || s.Name != o.Name || !slices.Equal(s.Counters, o.Counters) || len(s.Sets) != len(o.Sets) || len(s.Chains) != len(o.Chains) {
		return false
	}
	for k, v := range s.Sets {
		w, ok := o.Sets[k]
		if !ok || !slices.Equal(v, w) {
			return false
		}
	}
	for i := range s.Chains {
		a, b := s.Chains[i], o.Chains[i]
		if a.Name != b.Name || a.Hook != b.Hook || a.Priority != b.Priority || !slices.Equal(a.Rules, b.Rules) {
			return false
		}
	}
	return true
}
