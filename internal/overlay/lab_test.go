package overlay

// Helpers of the integration tests: a two-host lab built with `ip` inside
// namespaces of its own (nothing in the root namespace), an ICMP echo client
// and an underlay capture written against raw sockets so the tests need
// neither ping nor tcpdump.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/spec"
)

const testVNI = 444

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip, bridge) to build and inspect the lab")
	}
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testHost is one lab host: its namespace and overlay config.
type testHost struct {
	netns string
	ns    netns.NsHandle
	cfg   HostConfig
}

// testContainer is one container of the lab and its link.
type testContainer struct {
	host *testHost
	link ContainerLink
}

func (c testContainer) peer() Peer {
	return Peer{IP: c.link.Addr.Addr(), MAC: c.link.MAC, Host: c.host.cfg.LocalAddr}
}

type testLab struct {
	cluster string
	hosts   [2]*testHost
}

// newTestLab makes two host namespaces joined by a veth pair (eth0 on both,
// 192.168.77.1/24 and .2/24 with the given underlay MTU). Namespaces are
// removed when the test ends, whatever happened.
func newTestLab(t *testing.T, underlayMTU int) *testLab {
	t.Helper()
	requireRoot(t)
	lab := &testLab{cluster: "ovt" + randomSuffix(t)}
	for i := range lab.hosts {
		name := naming.HostNetns(lab.cluster, fmt.Sprintf("h%d", i+1))
		run(t, "ip", "netns", "add", name)
		t.Cleanup(func() { removeNetns(t, name) })
		run(t, "ip", "-n", name, "link", "set", "lo", "up")
		// IPv6 autoconfiguration would keep writing link and address
		// notifications for seconds and blur the checks that a call wrote
		// nothing.
		run(t, "ip", "netns", "exec", name, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6")
		ns, err := netns.GetFromName(name)
		if err != nil {
			t.Fatalf("opening %s: %v", name, err)
		}
		t.Cleanup(func() { ns.Close() })
		local := netip.AddrFrom4([4]byte{192, 168, 77, byte(i + 1)})
		lab.hosts[i] = &testHost{netns: name, ns: ns, cfg: HostConfig{
			VNI: testVNI, Port: 4789, MTU: underlayMTU - spec.VXLANOverhead,
			Bridge:        "br-vxlan",
			BridgeAddr:    netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 10, 255, byte(i + 1)}), 16),
			LocalAddr:     local,
			UnderlayIface: naming.HostUnderlayIface,
		}}
	}
	a, b := lab.hosts[0], lab.hosts[1]
	run(t, "ip", "-n", a.netns, "link", "add", "eth0", "mtu", fmt.Sprint(underlayMTU), "type", "veth",
		"peer", "name", "eth0", "mtu", fmt.Sprint(underlayMTU), "netns", b.netns)
	for _, h := range lab.hosts {
		run(t, "ip", "-n", h.netns, "addr", "add", h.cfg.LocalAddr.String()+"/24", "dev", "eth0")
		run(t, "ip", "-n", h.netns, "link", "set", "eth0", "up")
	}
	return lab
}

// addContainer creates a container namespace on host h with address ip/16
// and the host's bridge address as gateway.
func (lab *testLab) addContainer(t *testing.T, h *testHost, name, ip string) testContainer {
	t.Helper()
	nsName := naming.ContainerNetns(lab.cluster, "h", name)
	t.Cleanup(func() { removeNetns(t, nsName) })
	created, err := EnsureContainerNetns(nsName)
	if err != nil || !created {
		t.Fatalf("EnsureContainerNetns(%s) = %v, %v; want created", nsName, created, err)
	}
	addr := netip.MustParseAddr(ip)
	c := testContainer{host: h, link: ContainerLink{
		Container: name, Netns: nsName,
		Addr: netip.PrefixFrom(addr, 16), MAC: naming.MACFromIP(addr),
		MTU: h.cfg.MTU, Gateway: h.cfg.BridgeAddr.Addr(),
	}}
	changed, err := AttachContainer(h.ns, h.cfg, c.link)
	if err != nil || !changed {
		t.Fatalf("AttachContainer(%s) = %v, %v; want changed", name, changed, err)
	}
	return c
}

func removeNetns(t *testing.T, name string) {
	if _, err := os.Stat("/run/netns/" + name); err != nil {
		return
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		t.Errorf("cleanup: ip netns del %s: %v %s", name, err, out)
	}
}

// waitSettled polls until every link of the namespace has its final
// operational state, so that late carrier notifications (the kernel sends
// them up to a second after a change) cannot be taken for writes.
func waitSettled(t *testing.T, nsName string) {
	t.Helper()
	var links []struct {
		Name      string `json:"ifname"`
		Operstate string `json:"operstate"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := run(t, "ip", "-n", nsName, "-j", "link", "show")
		if err := json.Unmarshal([]byte(out), &links); err != nil {
			t.Fatalf("parsing ip link: %v", err)
		}
		settled := true
		for _, l := range links {
			if l.Operstate != "UP" && l.Operstate != "UNKNOWN" {
				settled = false
			}
		}
		if settled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("links of %s not settled: %+v", nsName, links)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ifindex reads a link's ifindex with `ip`, independently of the package.
func ifindex(t *testing.T, nsName, dev string) int {
	t.Helper()
	var links []struct {
		Ifindex int `json:"ifindex"`
	}
	out := run(t, "ip", "-n", nsName, "-j", "link", "show", "dev", dev)
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("parsing ip link of %s in %s: %v %q", dev, nsName, err, out)
	}
	return links[0].Ifindex
}

type fdbRow struct {
	MAC    string   `json:"mac"`
	Dst    string   `json:"dst"`
	Master string   `json:"master"`
	Flags  []string `json:"flags"`
	State  string   `json:"state"`
}

func (r fdbRow) has(flag string) bool {
	for _, f := range r.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// fdb is `bridge fdb show dev <vxlan>` of a host.
func fdb(t *testing.T, h *testHost) []fdbRow {
	t.Helper()
	var rows []fdbRow
	out := run(t, "bridge", "-n", h.netns, "-j", "fdb", "show", "dev", h.cfg.VXLANDevice())
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("parsing bridge fdb: %v %q", err, out)
	}
	return rows
}

type neighRow struct {
	Dst    string   `json:"dst"`
	LLAddr string   `json:"lladdr"`
	State  []string `json:"state"`
}

// neighbors is `ip neigh show dev <dev>` in a namespace.
func neighbors(t *testing.T, nsName, dev string) []neighRow {
	t.Helper()
	var rows []neighRow
	out := run(t, "ip", "-n", nsName, "-j", "neigh", "show", "dev", dev)
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("parsing ip neigh: %v %q", err, out)
	}
	return rows
}

// ping sends one ICMP echo request of payload bytes from inside the named
// namespace and waits for the reply. With dontFragment the kernel refuses
// (EMSGSIZE) a packet larger than the route's MTU at the sender.
func ping(nsName string, dst netip.Addr, payload int, dontFragment bool, timeout time.Duration) error {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return err
	}
	defer ns.Close()
	var fd int
	// A socket stays in the namespace it was created in.
	err = nsthread.Do(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		return fmt.Errorf("opening ICMP socket: %w", err)
	}
	defer unix.Close(fd)
	if dontFragment {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
			return err
		}
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000}); err != nil {
		return err
	}
	idBytes := make([]byte, 2)
	if _, err := rand.Read(idBytes); err != nil {
		return err
	}
	id := binary.BigEndian.Uint16(idBytes)
	request := make([]byte, 8+payload)
	request[0] = 8 // echo request
	binary.BigEndian.PutUint16(request[4:], id)
	binary.BigEndian.PutUint16(request[6:], 1)
	for i := range payload {
		request[8+i] = byte(i)
	}
	binary.BigEndian.PutUint16(request[2:], icmpChecksum(request))
	if err := unix.Sendto(fd, request, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return fmt.Errorf("sending echo request: %w", err)
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("receiving: %w", err)
		}
		src, ok := from.(*unix.SockaddrInet4)
		if !ok || src.Addr != dst.As4() || n < 20 {
			continue
		}
		reply := buf[int(buf[0]&0x0f)*4 : n]
		if len(reply) >= 8 && reply[0] == 0 && binary.BigEndian.Uint16(reply[4:]) == id && len(reply) == len(request) {
			return nil
		}
	}
	return fmt.Errorf("no echo reply from %s within %v", dst, timeout)
}

// pingEventually retries ping until it succeeds or time runs out.
func pingEventually(t *testing.T, nsName string, dst netip.Addr, payload int) {
	t.Helper()
	var err error
	for range 10 {
		if err = ping(nsName, dst, payload, true, 500*time.Millisecond); err == nil {
			return
		}
	}
	t.Fatalf("ping %s from %s (payload %d): %v", dst, nsName, payload, err)
}

func icmpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// vxlanFrame is one VXLAN packet seen on the underlay, decoded.
type vxlanFrame struct {
	outgoing  bool
	outerDst  netip.Addr
	innerDst  net.HardwareAddr
	innerType uint16
}

// underlayCapture records every frame of a host's underlay interface with an
// AF_PACKET socket, as tcpdump would.
type underlayCapture struct {
	mu     sync.Mutex
	frames []vxlanFrame
	other  int // frames that are not VXLAN on port
	stop   context.CancelFunc
	done   chan struct{}
}

func startCapture(t *testing.T, h *testHost) *underlayCapture {
	t.Helper()
	var fd int
	err := nsthread.Do(h.ns, func() error {
		iface, err := net.InterfaceByName(h.cfg.UnderlayIface)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: iface.Index})
	})
	if err != nil {
		t.Fatalf("opening capture on %s of %s: %v", h.cfg.UnderlayIface, h.netns, err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50_000}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &underlayCapture{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer unix.Close(fd)
		buf := make([]byte, 65536)
		for ctx.Err() == nil {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			ll, _ := from.(*unix.SockaddrLinklayer)
			outgoing := ll != nil && ll.Pkttype == unix.PACKET_OUTGOING
			frame, ok := decodeVXLAN(buf[:n], h.cfg.Port)
			c.mu.Lock()
			if ok {
				frame.outgoing = outgoing
				c.frames = append(c.frames, frame)
			} else {
				c.other++
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *underlayCapture) close() {
	c.stop()
	<-c.done
}

// snapshot returns the VXLAN frames seen so far.
func (c *underlayCapture) snapshot() []vxlanFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]vxlanFrame(nil), c.frames...)
}

func decodeVXLAN(frame []byte, port int) (vxlanFrame, bool) {
	const ethLen, udpLen, vxlanLen = 14, 8, 8
	if len(frame) < ethLen+20 || binary.BigEndian.Uint16(frame[12:]) != unix.ETH_P_IP {
		return vxlanFrame{}, false
	}
	ip := frame[ethLen:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[9] != unix.IPPROTO_UDP || len(ip) < ihl+udpLen+vxlanLen+ethLen {
		return vxlanFrame{}, false
	}
	udp := ip[ihl:]
	if int(binary.BigEndian.Uint16(udp[2:])) != port {
		return vxlanFrame{}, false
	}
	inner := udp[udpLen+vxlanLen:]
	dst, _ := netip.AddrFromSlice(ip[16:20])
	return vxlanFrame{
		outerDst:  dst,
		innerDst:  bytes.Clone(inner[0:6]),
		innerType: binary.BigEndian.Uint16(inner[12:]),
	}, true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// writeWatch collects the kernel's notifications of writes to links,
// addresses, routes and one link's neighbor/FDB entries in a namespace,
// whoever made them, on one netlink socket: the kernel queues notifications
// to a socket in the order of the writes, so a marker write seen on it
// proves every earlier write has been seen too.
type writeWatch struct {
	t       *testing.T
	nsName  string
	updates chan syscall.NetlinkMessage
	neighOf int
	done    chan struct{}
}

// watchWrites subscribes in the namespace and returns once the subscription
// provably sees writes (a marker write arrived). neighLink selects the link
// whose neighbor and FDB notifications count (0: none).
func watchWrites(t *testing.T, nsName string, neighLink int) *writeWatch {
	t.Helper()
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		t.Fatalf("opening %s: %v", nsName, err)
	}
	defer ns.Close()
	sock, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE,
		unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_NEIGH)
	if err != nil {
		t.Fatalf("subscribing to netlink notifications in %s: %v", nsName, err)
	}
	if err := sock.SetReceiveTimeout(&unix.Timeval{Usec: 100_000}); err != nil {
		t.Fatal(err)
	}
	w := &writeWatch{
		t: t, nsName: nsName, neighOf: neighLink,
		updates: make(chan syscall.NetlinkMessage, 1024),
		done:    make(chan struct{}),
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		defer sock.Close()
		for {
			select {
			case <-w.done:
				return
			default:
			}
			msgs, _, err := sock.Receive()
			if err != nil {
				continue
			}
			for _, m := range msgs {
				select {
				case w.updates <- m:
				case <-w.done:
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		w.stop()
		<-stopped
	})
	w.collectUntilMarker("begin")
	return w
}

func (w *writeWatch) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
}

// writes ends the watch and returns the writes seen since it began.
func (w *writeWatch) writes() []string {
	seen := w.collectUntilMarker("end")
	w.stop()
	return seen
}

// collectUntilMarker makes a marker write (an alias on lo) and returns what
// arrived before it.
func (w *writeWatch) collectUntilMarker(name string) []string {
	w.t.Helper()
	marker := "weft-test-" + name + "-" + randomSuffix(w.t)
	run(w.t, "ip", "-n", w.nsName, "link", "set", "lo", "alias", marker)
	var seen []string
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-w.updates:
			switch m.Header.Type {
			case unix.RTM_NEWLINK, unix.RTM_DELLINK:
				header := unix.NlMsghdr(m.Header)
				link, err := netlink.LinkDeserialize(&header, m.Data)
				if err == nil && link.Attrs().Alias == marker {
					return seen
				}
				if err == nil {
					seen = append(seen, "link "+link.Attrs().Name)
				} else {
					seen = append(seen, "link (undecoded)")
				}
			case unix.RTM_NEWADDR, unix.RTM_DELADDR:
				seen = append(seen, fmt.Sprintf("address message %d", m.Header.Type))
			case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
				seen = append(seen, fmt.Sprintf("route message %d", m.Header.Type))
			case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
				n, err := netlink.NeighDeserialize(m.Data)
				if err == nil && w.neighOf != 0 && n.LinkIndex == w.neighOf {
					seen = append(seen, fmt.Sprintf("neighbor message %d: %s %s state %#x", m.Header.Type, n.IP, n.HardwareAddr, n.State))
				}
			}
		case <-timeout:
			w.t.Fatalf("marker %s not seen in %s", marker, w.nsName)
		}
	}
}
