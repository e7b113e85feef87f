package lab

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/spec"
)

// labCluster is a cluster of len(hosts) hosts, host i in its own subnet
// 192.168.i.0/24 at .10, hand-made so that the tests do not depend on the
// file parser.
func labCluster(name string, hosts int) *spec.Cluster {
	c := &spec.Cluster{
		Name:     name,
		Provider: "lab",
		Network:  spec.Network{CIDR: netip.MustParsePrefix("192.168.0.0/16"), MTU: 1500},
	}
	for i := 1; i <= hosts; i++ {
		subnet := string(rune('a' + i - 1))
		c.Network.Subnets = append(c.Network.Subnets, spec.Subnet{
			Name: subnet,
			CIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 24),
		})
		c.Hosts = append(c.Hosts, spec.Host{
			Name:    "host" + string(rune('0'+i)),
			Subnet:  subnet,
			Address: netip.AddrFrom4([4]byte{192, 168, byte(i), 10}),
		})
	}
	return c
}

func TestPlanTopology(t *testing.T) {
	c := labCluster("demo", 3)
	c.Network.MTU = 0
	topo, err := planTopology(c)
	if err != nil {
		t.Fatal(err)
	}
	if topo.mtu != defaultMTU {
		t.Errorf("mtu = %d, want default %d", topo.mtu, defaultMTU)
	}
	if topo.routerNetns != "weft.demo.router" {
		t.Errorf("router netns = %q", topo.routerNetns)
	}
	if len(topo.subnets) != 3 || len(topo.hosts) != 3 {
		t.Fatalf("got %d subnets, %d hosts, want 3 and 3", len(topo.subnets), len(topo.hosts))
	}
	b := topo.subnets[1]
	if b.bridge != "s-b" || b.gateway != "g-b" || b.port != "p-b" || b.routerAddr != netip.MustParsePrefix("192.168.2.1/24") {
		t.Errorf("subnet b = %+v, want bridge s-b, gateway veth g-b <-> p-b with router 192.168.2.1/24", b)
	}
	h := topo.hosts[2]
	if h.netns != "weft.demo.h.host3" || h.addr != netip.MustParsePrefix("192.168.3.10/24") ||
		h.gateway != netip.MustParseAddr("192.168.3.1") || h.bridge != "s-c" || h.subnet != "c" {
		t.Errorf("host3 = %+v", h)
	}
	seen := map[string]bool{}
	for _, h := range topo.hosts {
		if len(h.routerVeth) > maxIfaceName || !strings.HasPrefix(h.routerVeth, hostVethPrefix) || seen[h.routerVeth] {
			t.Errorf("router veth %q of %s: want unique, prefixed, at most %d bytes", h.routerVeth, h.name, maxIfaceName)
		}
		seen[h.routerVeth] = true
	}
}

func TestRouterVethDiffersAcrossClusters(t *testing.T) {
	if hostVethName("one", "host1") == hostVethName("two", "host1") {
		t.Error("the same host name in two clusters got the same router veth name")
	}
}

func TestSubnetBridgeName(t *testing.T) {
	long1 := subnetLinkName(subnetBridgePrefix, "frontend-public-east")
	long2 := subnetLinkName(subnetBridgePrefix, "frontend-public-west")
	for _, n := range []string{long1, long2} {
		if len(n) > maxIfaceName || !strings.HasPrefix(n, subnetBridgePrefix) {
			t.Errorf("bridge name %q: want prefix %q and at most %d bytes", n, subnetBridgePrefix, maxIfaceName)
		}
	}
	if long1 == long2 {
		t.Errorf("two long subnet names share bridge %q", long1)
	}
	if got := subnetLinkName(subnetBridgePrefix, "exactly-13chr"); got != "s-exactly-13chr" {
		t.Errorf("a name that fits was changed to %q", got)
	}
}

func TestBroadcastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.1.0/24": "192.168.1.255",
		"10.0.0.0/8":     "10.255.255.255",
		"172.16.4.0/22":  "172.16.7.255",
		"192.168.1.8/29": "192.168.1.15",
	} {
		if got := broadcastAddr(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("broadcastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestPlanTopologyReportsEveryProblem(t *testing.T) {
	c := labCluster("demo", 3)
	c.Hosts[0].Address = netip.MustParseAddr("192.168.9.10")   // outside its subnet
	c.Hosts[1].Subnet = "nope"                                 // unknown subnet
	c.Hosts[2].Address = netip.MustParseAddr("192.168.3.1")    // the router's
	c.Network.Subnets = append(c.Network.Subnets, spec.Subnet{ // overlaps a
		Name: "d", CIDR: netip.MustParsePrefix("192.168.1.128/25"),
	})
	_, err := planTopology(c)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{
		`hosts[0] "host1": address 192.168.9.10 is outside its subnet "a"`,
		`hosts[1] "host2": subnet "nope" is not declared`,
		`hosts[2] "host3": address 192.168.3.1 is taken by the lab router`,
		`network.subnets[3] "d": cidr 192.168.1.128/25 overlaps subnet "a"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestPlanTopologyRejectsUnsafeNames(t *testing.T) {
	for _, name := range []string{"", "a.b", "../x", "Upper"} {
		c := labCluster("demo", 1)
		c.Name = name
		if _, err := planTopology(c); err == nil || !strings.Contains(err.Error(), "is not a valid name") {
			t.Errorf("cluster name %q: got %v, want a name error", name, err)
		}
	}
	c := labCluster("demo", 2)
	c.Hosts[1].Address = c.Hosts[0].Address
	c.Hosts[1].Subnet = c.Hosts[0].Subnet
	if _, err := planTopology(c); err == nil || !strings.Contains(err.Error(), `already used by host "host1"`) {
		t.Errorf("duplicate address: got %v", err)
	}
}

func TestParseProcStat(t *testing.T) {
	raw := "4242 (we) (ird name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200\n"
	st, err := parseProcStat(raw)
	if err != nil {
		t.Fatal(err)
	}
	if st.state != "S" || st.startTime != "987654" {
		t.Errorf("got %+v, want state S, start 987654", st)
	}
	if _, err := parseProcStat("4242 (x) S 1"); err == nil {
		t.Error("a truncated stat line was accepted")
	}
}

func TestUnescapeMountPath(t *testing.T) {
	if got := unescapeMountPath(`/var/lib/weft/a\040b/x`); got != "/var/lib/weft/a b/x" {
		t.Errorf("got %q", got)
	}
	if got := unescapeMountPath(`/plain`); got != "/plain" {
		t.Errorf("got %q", got)
	}
}
