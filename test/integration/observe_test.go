package integration

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/naming"
)

func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

func jsonLastLine(out string, v any) error {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return jsonUnmarshal(lines[len(lines)-1], v)
}

// dnsObserver asks one host's resolver for a name every few milliseconds,
// from inside that host's namespace, and remembers whether the name ever
// stopped resolving.
type dnsObserver struct {
	gone    atomic.Bool
	lastOK  atomic.Bool
	stop    chan struct{}
	stopped sync.WaitGroup
}

func newDNSObserver(t *testing.T, hostNS string, st api.Status, container string, want netip.Addr) *dnsObserver {
	t.Helper()
	var server netip.Addr
	for _, h := range st.Hosts {
		if naming.HostNetns(st.Cluster, h.Name) == hostNS {
			server = netip.MustParseAddr(h.OverlayAddr)
		}
	}
	if !server.IsValid() {
		t.Fatalf("no host with namespace %s", hostNS)
	}
	o := &dnsObserver{stop: make(chan struct{})}
	ready := make(chan error, 1)
	o.stopped.Add(1)
	go func() {
		defer o.stopped.Done()
		// This thread enters the lab host's namespace and dies with the
		// goroutine (never unlocked), so no other code runs in it.
		runtime.LockOSThread()
		ns, err := netns.GetFromName(hostNS)
		if err != nil {
			ready <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			ready <- err
			return
		}
		// Binding to the host's overlay address fails anywhere but inside
		// the lab host, so no query can ever leave from the root namespace.
		cl := &dns.Client{Timeout: 200 * time.Millisecond, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: server.AsSlice()}}}
		ready <- nil
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(container+"."+"weft"), dns.TypeA)
		for {
			select {
			case <-o.stop:
				return
			default:
			}
			resp, _, err := cl.Exchange(q, netip.AddrPortFrom(server, 53).String())
			ok := false
			if err == nil && resp.Rcode == dns.RcodeSuccess {
				for _, rr := range resp.Answer {
					if a, isA := rr.(*dns.A); isA && a.A.String() == want.String() {
						ok = true
					}
				}
			}
			if err == nil && !ok {
				o.gone.Store(true)
			}
			o.lastOK.Store(ok)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("entering %s: %v", hostNS, err)
	}
	t.Cleanup(o.close)
	return o
}

func (o *dnsObserver) close() {
	select {
	case <-o.stop:
	default:
		close(o.stop)
	}
	o.stopped.Wait()
}

func (o *dnsObserver) sawGone() bool { return o.gone.Load() }

func (o *dnsObserver) answering() error {
	if !o.lastOK.Load() {
		return fmt.Errorf("not answering yet")
	}
	return nil
}

// checkNoFlooding flushes every container's neighbor cache, captures VXLAN
// on the router's subnet bridges during a full reachability pass, and
// counts frames whose inner destination is broadcast, multicast or a MAC no
// container owns.
func checkNoFlooding(t *testing.T, c cluster) {
	st := c.status(t)
	checkNoFloodingIn(t, naming.RouterNetns(c.name), 3, knownMACs(st), func() {
		for _, ct := range st.Containers {
			c.exec(t, ct.Container, "ip", "neigh", "flush", "all")
		}
	}, func() { checkReachability(t, c) })
}

// knownMACs are the MACs of a cluster's containers and host bridges.
func knownMACs(st api.Status) map[string]bool {
	known := map[string]bool{}
	for _, ct := range st.Containers {
		known[strings.ToLower(ct.MAC)] = true
	}
	for _, h := range st.Hosts {
		known[strings.ToLower(naming.MACFromIP(netip.MustParseAddr(h.OverlayAddr)).String())] = true
	}
	return known
}

// checkNoFloodingIn is checkNoFlooding for any lab router namespace with
// wantBridges subnet bridges: flush empties the neighbor caches, traffic
// makes every container reach every other.
func checkNoFloodingIn(t *testing.T, router string, wantBridges int, known map[string]bool, flush, traffic func()) {
	t.Helper()
	bridges := strings.Fields(run(t, inNetns(router, "sh", "-c", "ip -o link show type bridge | awk -F': ' '{print $2}'")))
	if len(bridges) != wantBridges {
		t.Fatalf("want %d subnet bridges in the router, got %v", wantBridges, bridges)
	}
	// Every host's leg (h-*, a port of its subnet's bridge): each frame to
	// or from a host crosses its leg, routed or bridged. (The bridge
	// devices themselves see only what is routed through them, which is
	// nothing since the router's address moved to the g-* veths.)
	var links []string
	for _, l := range strings.Fields(run(t, inNetns(router, "sh", "-c", "ip -o link show type veth | awk -F': ' '{print $2}'"))) {
		if name, _, _ := strings.Cut(l, "@"); strings.HasPrefix(name, "h-") {
			links = append(links, name)
		}
	}
	if len(links) == 0 {
		t.Fatalf("no host legs (h-*) in the router namespace %s", router)
	}
	dir := t.TempDir()
	var caps []*exec.Cmd
	for _, l := range links {
		cmd := inNetns(router, "tcpdump", "-i", l, "-U", "-n", "-s", "128", "-w", dir+"/"+l+".pcap", "udp", "port", "4789")
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting tcpdump: %v", err)
		}
		caps = append(caps, cmd)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		// tcpdump says "listening on" once the capture is armed.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				break
			}
		}
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
	}
	flush()
	traffic()
	for _, cmd := range caps {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
	total, bad := 0, []string{}
	for _, l := range links {
		frames, err := innerDestinations(dir + "/" + l + ".pcap")
		if err != nil {
			t.Fatal(err)
		}
		for _, dst := range frames {
			total++
			if dst[0]&1 == 1 || !known[dst.String()] {
				bad = append(bad, l+": "+dst.String())
			}
		}
	}
	if total == 0 {
		t.Fatalf("captured no VXLAN frame at all: the capture is not seeing the underlay")
	}
	if len(bad) > 0 {
		t.Fatalf("%d of %d frames crossing the underlay had a broadcast/multicast/unknown inner destination: %v", len(bad), total, bad[:min(len(bad), 10)])
	}
	t.Logf("%d VXLAN frames crossed the underlay, none flooded", total)
}

// innerDestinations reads a pcap of Ethernet/IPv4/UDP/VXLAN frames and
// returns the inner Ethernet destination of each.
func innerDestinations(path string) ([]net.HardwareAddr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("%s: not a pcap", path)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if binary.BigEndian.Uint32(b[:4]) == 0xa1b2c3d4 {
		order = binary.BigEndian
	}
	if order.Uint32(b[20:24]) != 1 {
		return nil, fmt.Errorf("%s: link type %d, want Ethernet", path, order.Uint32(b[20:24]))
	}
	var out []net.HardwareAddr
	for off := 24; off+16 <= len(b); {
		incl := int(order.Uint32(b[off+8 : off+12]))
		pkt := b[off+16 : min(off+16+incl, len(b))]
		off += 16 + incl
		if len(pkt) < 14+20 || binary.BigEndian.Uint16(pkt[12:14]) != 0x0800 {
			continue
		}
		ihl := int(pkt[14]&0x0f) * 4
		inner := 14 + ihl + 8 + 8 // outer eth + ip + udp + vxlan
		if len(pkt) < inner+6 {
			continue
		}
		out = append(out, net.HardwareAddr(append([]byte(nil), pkt[inner:inner+6]...)))
	}
	return out, nil
}
