package integration

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/firewall"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
)

// Two hosts in two subnets; left and right on host1 (one bridge), far on host2.
const firewallTmpl = twoHosts + `services:
  left:
    command: [HELLO, -listen, ":8080", -name, left]
    host: host1
    ip: 10.10.0.5
    port: 8080
    health: {http: /health, interval: 200ms}
  right:
    command: [HELLO, -listen, ":8080", -name, right]
    host: host1
    ip: 10.10.0.6
    port: 8080
    health: {http: /health, interval: 200ms}
  far:
    command: [HELLO, -listen, ":8080", -name, far]
    host: host2
    ip: 10.10.0.9
    port: 8080
    health: {http: /health, interval: 200ms}
`

const probePort = 9999 // the test's UDP listeners inside containers

// joinedTmpl is firewallTmpl with a third host, a worker in a third subnet.
func joinedTmpl() string {
	return strings.NewReplacer(
		"  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}\n", "  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24, c: 192.168.3.0/24}\n",
		"  - {name: host2, subnet: b}\n", "  - {name: host2, subnet: b}\n  - {name: host3, subnet: c, roles: [worker]}\n",
	).Replace(firewallTmpl)
}

// members is the members set of the firewall in a host namespace.
func members(t *testing.T, nsName string) []string {
	t.Helper()
	for _, st := range readFirewall(t, nsName) {
		if st.Shape.Family == firewall.Inet {
			return st.Shape.Sets["members"]
		}
	}
	return nil
}

// checkJoin adds host3 to the file: `weft up` brings it in (its agent must
// reach etcd through host1's and host2's firewalls before the file with it
// is applied), host1 takes it as a member, and its VXLAN is delivered.
func checkJoin(t *testing.T, c cluster, sink *udpSink) {
	if slices.Contains(members(t, hostNetns(c, "host1")), "192.168.3.10") {
		t.Fatalf("host3 is a member before it joined")
	}
	c.rewrite(t, joinedTmpl())
	mustWeft(t, "up", "-f", c.file)
	eventually(t, 20*time.Second, "host3 in host1's members", func() error {
		if m := members(t, hostNetns(c, "host1")); !slices.Contains(m, "192.168.3.10") {
			return fmt.Errorf("members %v", m)
		}
		return nil
	})
	target := netip.AddrPortFrom(netip.MustParseAddr("10.10.0.5"), probePort)
	sink.waitFor(t, "a frame from host3 reaches left-1", "from-host3", func() error {
		return sendUDPFrom(hostNetns(c, "host3"), netip.Addr{}, netip.MustParseAddrPort("192.168.1.10:4789"),
			vxlanFrame(444, naming.MACFromIP(target.Addr()), target, "from-host3"))
	})
}

// TestFirewall: the host firewall (internal/firewall) on a real cluster.
// The attacks are made by the test itself, as root, from inside a lab
// namespace: a stranger on the underlay, and a container that has the
// capabilities weft takes away (NET_ADMIN, NET_RAW), as a container that
// broke out of its confinement would.
func TestFirewall(t *testing.T) {
	c := writeCluster(t, uniqueName("fw-"), firewallTmpl)
	upCluster(t, c)
	ln := map[string]*udpSink{}
	for _, ct := range []string{"left-1", "right-1", "far-1"} {
		ln[ct] = listenUDPIn(t, containerNetns(t, c, ct), probePort)
	}
	t.Run("status shows every host's firewall", func(t *testing.T) {
		for _, h := range c.status(t).Hosts {
			if h.Firewall == nil || !h.Firewall.On {
				t.Errorf("%s: firewall %+v, want on", h.Name, h.Firewall)
			}
		}
	})
	t.Run("VXLAN and etcd from a stranger on the underlay are dropped and counted", func(t *testing.T) { checkVXLANInjection(t, c, ln["left-1"]) })
	t.Run("a spoofing container reaches nobody", func(t *testing.T) { checkSpoofing(t, c, ln) })
	t.Run("a container cannot reach its host's or another host's control ports", func(t *testing.T) { checkContainerToControl(t, c) })
	t.Run("names and the overlay still work", func(t *testing.T) {
		for _, to := range []string{"right", "far"} {
			if r := c.exec(t, "left-1", "wget", "-q", "-T", "3", "-O", "-", "http://"+to+":8080/health"); r.code != 0 {
				t.Errorf("left-1 -> %s by name: exit %d %s", to, r.code, r.stderr)
			}
		}
	})
	t.Run("a host that joins becomes a member", func(t *testing.T) { checkJoin(t, c, ln["left-1"]) })
	t.Run("firewall: false removes it", func(t *testing.T) {
		c.rewrite(t, strings.Replace(joinedTmpl(), "provider: lab\n", "provider: lab\nfirewall: false\n", 1))
		mustWeft(t, "up", "-f", c.file)
		eventually(t, 20*time.Second, "the firewall tables gone from host1", func() error {
			if n := len(readFirewall(t, hostNetns(c, "host1"))); n != 0 {
				return fmt.Errorf("%d tables left", n)
			}
			return nil
		})
		if h := c.status(t).Hosts[0]; h.Firewall == nil || h.Firewall.On {
			t.Errorf("status of host1 after firewall: false: %+v", h.Firewall)
		}
	})
}

func containerNetns(t *testing.T, c cluster, container string) string {
	t.Helper()
	for _, ct := range c.status(t).Containers {
		if ct.Container == container {
			return ct.Netns
		}
	}
	t.Fatalf("no container %s", container)
	return ""
}

// dropped is a counter of host's firewall as `weft status --json` shows it.
func dropped(t *testing.T, c cluster, host, counter string) uint64 {
	t.Helper()
	for _, h := range c.status(t).Hosts {
		if h.Name == host && h.Firewall != nil {
			return h.Firewall.Dropped[counter]
		}
	}
	t.Fatalf("status has no firewall for %s", host)
	return 0
}

func waitDropped(t *testing.T, c cluster, host, counter string, above uint64) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%s's %s counter above %d", host, counter, above), func() error {
		if n := dropped(t, c, host, counter); n <= above {
			return fmt.Errorf("still %d", n)
		}
		return nil
	})
}

func readFirewall(t *testing.T, nsName string) []firewall.State {
	t.Helper()
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	st, err := firewall.NFT{NetNS: int(ns)}.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// udpSink collects the datagrams a UDP socket inside a namespace receives.
type udpSink struct {
	mu  sync.Mutex
	got []string
}

func listenUDPIn(t *testing.T, nsName string, port int) *udpSink {
	t.Helper()
	var conn net.PacketConn
	err := nsthread.DoNamed(nsName, func() error {
		var err error
		conn, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listening in %s: %v", nsName, err)
	}
	s := &udpSink{}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *udpSink) has(payload string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.got, payload)
}

// waitFor sends (again and again: UDP, ARP to resolve first) until the
// sink has payload.
func (s *udpSink) waitFor(t *testing.T, what, payload string, send func() error) {
	t.Helper()
	eventually(t, 10*time.Second, what, func() error {
		if s.has(payload) {
			return nil
		}
		if err := send(); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		if !s.has(payload) {
			return errors.New("not received")
		}
		return nil
	})
}

// sendUDPFrom sends payload to dst from inside nsName, from source address
// src when valid.
func sendUDPFrom(nsName string, src netip.Addr, dst netip.AddrPort, payload []byte) error {
	return nsthread.DoNamed(nsName, func() error {
		var laddr *net.UDPAddr
		if src.IsValid() {
			laddr = &net.UDPAddr{IP: src.AsSlice()}
		}
		conn, err := net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Write(payload)
		return err
	})
}

// vxlanFrame is a VXLAN datagram's payload carrying one UDP datagram from
// 10.10.0.99 to dst inside an Ethernet frame to dstMAC.
func vxlanFrame(vni int, dstMAC net.HardwareAddr, dst netip.AddrPort, payload string) []byte {
	udp := binary.BigEndian.AppendUint16(nil, 40000)
	udp = binary.BigEndian.AppendUint16(udp, dst.Port())
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(udp, 0, 0) // no checksum (IPv4 allows it)
	udp = append(udp, payload...)
	src, d := netip.MustParseAddr("10.10.0.99").As4(), dst.Addr().As4()
	ip := []byte{0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip = append(append(ip, src[:]...), d[:]...)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	eth := append(append([]byte{}, dstMAC...), 0x02, 0x42, 0x0a, 0x0a, 0x00, 0x63, 0x08, 0x00)
	vx := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	return append(append(append(vx, eth...), ip...), udp...)
}

// stranger adds a namespace with address addr on the router's bridge of
// the subnet whose router leg is gw: someone else on the underlay. Its name
// has the cluster's prefix, so `weft down` removes it too.
func stranger(t *testing.T, c cluster, gw, addr string) string {
	t.Helper()
	router := naming.RouterNetns(c.name)
	out, err := exec.Command("ip", "-n", router, "-o", "-4", "addr", "show").Output()
	if err != nil {
		t.Fatalf("listing the router's addresses: %v", err)
	}
	bridge := ""
	for _, line := range strings.Split(string(out), "\n") {
		// The router's address is on the gateway veth g-<subnet>, whose
		// peer is a port of the subnet's bridge s-<subnet>.
		if f := strings.Fields(line); len(f) > 3 && strings.HasPrefix(f[3], gw+"/") && strings.HasPrefix(f[1], "g-") {
			bridge = "s-" + strings.TrimPrefix(f[1], "g-")
		}
	}
	if bridge == "" {
		t.Fatalf("no router leg %s in:\n%s", gw, out)
	}
	ns := naming.NetnsPrefix(c.name) + "x.stranger"
	veth := "fwx" + strings.TrimPrefix(c.name, "fw-")
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", router, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", router, "link", "set", veth, "master", bridge, "up"},
		{"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	return ns
}

func checkVXLANInjection(t *testing.T, c cluster, sink *udpSink) {
	host1 := netip.MustParseAddrPort("192.168.1.10:4789")
	target := netip.AddrPortFrom(netip.MustParseAddr("10.10.0.5"), probePort)
	mac := naming.MACFromIP(target.Addr())
	// The same frame from a member host (host2's namespace) is delivered:
	// the frame is good, only its sender differs.
	sink.waitFor(t, "a frame injected from member host2 reaches left-1", "from-member", func() error {
		return sendUDPFrom(hostNetns(c, "host2"), netip.Addr{}, host1, vxlanFrame(444, mac, target, "from-member"))
	})
	ns := stranger(t, c, "192.168.1.1", "192.168.1.99")
	before := dropped(t, c, "host1", firewall.CounterVXLAN)
	if err := sendUDPFrom(ns, netip.Addr{}, host1, vxlanFrame(444, mac, target, "from-stranger")); err != nil {
		t.Fatal(err)
	}
	waitDropped(t, c, "host1", firewall.CounterVXLAN, before)
	// A later member frame arrives; the stranger's never did.
	sink.waitFor(t, "a later member frame", "from-member-2", func() error {
		return sendUDPFrom(hostNetns(c, "host2"), netip.Addr{}, host1, vxlanFrame(444, mac, target, "from-member-2"))
	})
	if sink.has("from-stranger") {
		t.Errorf("the stranger's frame reached left-1")
	}

	// etcd: the stranger is refused, the lab router (where the chaos
	// runner reads the store) is not.
	if err := dialIn(naming.RouterNetns(c.name), etcdClientAddr("192.168.1.10")); err != nil {
		t.Fatalf("the lab router cannot reach host1's etcd: %v", err)
	}
	before = dropped(t, c, "host1", firewall.CounterControl)
	for _, addr := range []string{etcdClientAddr("192.168.1.10"), etcdPeerAddr("192.168.1.10")} {
		if err := dialIn(ns, addr); err == nil {
			t.Errorf("the stranger reached etcd at %s", addr)
		}
	}
	waitDropped(t, c, "host1", firewall.CounterControl, before)
}

func checkSpoofing(t *testing.T, c cluster, ln map[string]*udpSink) {
	nsLeft := containerNetns(t, c, "left-1")
	self := netip.MustParseAddr("10.10.0.5")
	targets := map[string]netip.AddrPort{
		"right-1": netip.AddrPortFrom(netip.MustParseAddr("10.10.0.6"), probePort), // same bridge
		"far-1":   netip.AddrPortFrom(netip.MustParseAddr("10.10.0.9"), probePort), // across the overlay
	}
	honest := func(tag string) {
		for name, dst := range targets {
			ln[name].waitFor(t, "an honest datagram left-1 -> "+name, tag, func() error { return sendUDPFrom(nsLeft, self, dst, []byte(tag)) })
		}
	}
	honest("honest-1") // also fills left-1's neighbor cache: what follows needs no ARP

	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", nsLeft}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	// Another container's address (b's), and one nobody has.
	before := dropped(t, c, "host1", firewall.CounterSpoofed)
	for _, forged := range []string{"10.10.0.6", "10.10.0.77"} {
		ip("addr", "add", forged+"/32", "dev", "eth0")
		for _, dst := range targets {
			if err := sendUDPFrom(nsLeft, netip.MustParseAddr(forged), dst, []byte("forged-ip-"+forged)); err != nil {
				t.Fatal(err)
			}
		}
		ip("addr", "del", forged+"/32", "dev", "eth0")
	}
	waitDropped(t, c, "host1", firewall.CounterSpoofed, before)
	// Another MAC with its own address.
	before = dropped(t, c, "host1", firewall.CounterSpoofed)
	ip("link", "set", "eth0", "address", "02:42:0a:0a:00:4d")
	for _, dst := range targets {
		if err := sendUDPFrom(nsLeft, self, dst, []byte("forged-mac")); err != nil {
			t.Fatal(err)
		}
	}
	waitDropped(t, c, "host1", firewall.CounterSpoofed, before)
	ip("link", "set", "eth0", "address", naming.MACFromIP(self).String())
	honest("honest-2")
	for name := range targets {
		for _, forged := range []string{"forged-ip-10.10.0.6", "forged-ip-10.10.0.77", "forged-mac"} {
			if ln[name].has(forged) {
				t.Errorf("%s received %q from left-1", name, forged)
			}
		}
	}
}

func checkContainerToControl(t *testing.T, c cluster) {
	nsLeft := containerNetns(t, c, "left-1")
	st := c.status(t)
	bridge1 := st.Hosts[0].OverlayAddr
	// What CAP_NET_ADMIN would allow: a route to the underlay through the host.
	if out, err := exec.Command("ip", "-n", nsLeft, "route", "add", "192.168.0.0/16", "via", bridge1).CombinedOutput(); err != nil {
		t.Fatalf("adding a route in left-1: %v %s", err, out)
	}
	// The agents reach etcd there: the addresses and ports are right.
	if err := dialIn(hostNetns(c, "host1"), etcdClientAddr("192.168.2.10")); err != nil {
		t.Fatalf("host1 cannot reach host2's etcd (the test's premise): %v", err)
	}
	toHost := dropped(t, c, "host1", firewall.CounterToHost)
	routed := dropped(t, c, "host1", firewall.CounterRouted)
	for _, addr := range []string{etcdClientAddr("192.168.1.10"), etcdPeerAddr("192.168.1.10"), etcdClientAddr(bridge1), etcdClientAddr("192.168.2.10"), etcdPeerAddr("192.168.2.10")} {
		if err := dialIn(nsLeft, addr); err == nil {
			t.Errorf("left-1 reached %s", addr)
		}
	}
	if err := sendUDPFrom(nsLeft, netip.Addr{}, netip.MustParseAddrPort("192.168.1.10:7947"), []byte("probe?")); err != nil {
		t.Fatal(err)
	}
	waitDropped(t, c, "host1", firewall.CounterToHost, toHost)
	waitDropped(t, c, "host1", firewall.CounterRouted, routed)
	// DNS on the host's bridge address still answers containers.
	if r := c.exec(t, "left-1", "wget", "-q", "-T", "3", "-O", "-", "http://far:8080/health"); r.code != 0 {
		t.Errorf("left-1 -> far by name after the attempts: exit %d %s", r.code, r.stderr)
	}
}

func dialIn(nsName, addr string) error {
	return nsthread.DoNamed(nsName, func() error {
		conn, err := net.DialTimeout("tcp4", addr, 1500*time.Millisecond)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}
