package overlay

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/naming"
)

func mustEnsureHost(t *testing.T, h *testHost, wantChanged bool) {
	t.Helper()
	changed, err := EnsureHost(h.ns, h.cfg)
	if err != nil {
		t.Fatalf("EnsureHost(%s): %v", h.netns, err)
	}
	if changed != wantChanged {
		t.Fatalf("EnsureHost(%s) changed = %v, want %v", h.netns, changed, wantChanged)
	}
}

func mustSync(t *testing.T, h *testHost, peers []Peer, want SyncResult) {
	t.Helper()
	got, err := SyncPeers(h.ns, h.cfg, peers)
	if err != nil {
		t.Fatalf("SyncPeers(%s): %v", h.netns, err)
	}
	if got != want {
		t.Fatalf("SyncPeers(%s) = %+v, want %+v", h.netns, got, want)
	}
}

func fdbRowsOf(rows []fdbRow, mac net.HardwareAddr) []fdbRow {
	var out []fdbRow
	for _, r := range rows {
		if r.MAC == mac.String() {
			out = append(out, r)
		}
	}
	return out
}

// assertPeerProgrammed checks with `bridge fdb` and `ip neigh` that host h
// has exactly the three entries of p.
func assertPeerProgrammed(t *testing.T, h *testHost, p Peer) {
	t.Helper()
	var self, master int
	for _, r := range fdbRowsOf(fdb(t, h), p.MAC) {
		switch {
		case r.has("self"):
			self++
			if r.Dst != p.Host.String() || r.State != "permanent" {
				t.Errorf("fdb self entry of %s = %+v, want dst %s permanent", p.MAC, r, p.Host)
			}
		case r.Master == h.cfg.Bridge:
			master++
			if r.State != "static" {
				t.Errorf("bridge fdb entry of %s = %+v, want static", p.MAC, r)
			}
		}
	}
	if self != 1 || master != 1 {
		t.Errorf("%s has %d self and %d bridge fdb entries for %s, want 1 and 1", h.netns, self, master, p.MAC)
	}
	found := false
	for _, n := range neighbors(t, h.netns, h.cfg.VXLANDevice()) {
		if n.Dst == p.IP.String() {
			found = true
			if n.LLAddr != p.MAC.String() || !slices.Contains(n.State, "PERMANENT") {
				t.Errorf("neighbor %s = %+v, want %s PERMANENT", p.IP, n, p.MAC)
			}
		}
	}
	if !found {
		t.Errorf("%s has no neighbor entry for %s", h.netns, p.IP)
	}
}

func assertPeerAbsent(t *testing.T, h *testHost, p Peer) {
	t.Helper()
	if rows := fdbRowsOf(fdb(t, h), p.MAC); len(rows) != 0 {
		t.Errorf("%s still has fdb entries for %s: %+v", h.netns, p.MAC, rows)
	}
	for _, n := range neighbors(t, h.netns, h.cfg.VXLANDevice()) {
		if n.Dst == p.IP.String() {
			t.Errorf("%s still has neighbor entry %+v", h.netns, n)
		}
	}
}

func TestOverlayAcrossTwoHosts(t *testing.T) {
	lab := newTestLab(t, 1500)
	h1, h2 := lab.hosts[0], lab.hosts[1]
	mustEnsureHost(t, h1, true)
	mustEnsureHost(t, h2, true)
	web := lab.addContainer(t, h1, "web-1", "10.10.0.5")
	db := lab.addContainer(t, h2, "db-1", "10.10.0.6")
	mustSync(t, h1, []Peer{db.peer()}, SyncResult{Added: 1})
	mustSync(t, h2, []Peer{web.peer()}, SyncResult{Added: 1})

	t.Run("host devices", func(t *testing.T) {
		details := run(t, "ip", "-n", h1.netns, "-d", "link", "show", "dev", h1.cfg.VXLANDevice())
		for _, want := range []string{"vxlan id 444", "local 192.168.77.1", "dev eth0", "dstport 4789", "nolearning proxy", "mtu 1450", "master br-vxlan", "state UNKNOWN"} {
			if !strings.Contains(details, want) {
				t.Errorf("vxlan device lacks %q:\n%s", want, details)
			}
		}
		// The bridge learns nothing from the vxlan port: a frame from
		// another host with a local container's MAC cannot move its entry.
		if !strings.Contains(details, "learning off") {
			t.Errorf("vxlan bridge port learns MACs:\n%s", details)
		}
		for _, unwanted := range []string{"l2miss", "l3miss"} {
			if strings.Contains(details, unwanted) {
				t.Errorf("vxlan device has %q:\n%s", unwanted, details)
			}
		}
		bridge := run(t, "ip", "-n", h1.netns, "addr", "show", "dev", "br-vxlan")
		for _, want := range []string{"inet 10.10.255.1/16", "link/ether 02:42:0a:0a:ff:01", "mtu 1450", ",UP"} {
			if !strings.Contains(bridge, want) {
				t.Errorf("bridge lacks %q:\n%s", want, bridge)
			}
		}
		for _, r := range fdb(t, h1) {
			if r.MAC == "00:00:00:00:00:00" {
				t.Errorf("default fdb entry present: %+v", r)
			}
		}
	})

	t.Run("container link", func(t *testing.T) {
		ns := web.link.Netns
		eth0 := run(t, "ip", "-n", ns, "addr", "show", "dev", "eth0")
		for _, want := range []string{"inet 10.10.0.5/16", "link/ether 02:42:0a:0a:00:05", "mtu 1450", ",UP"} {
			if !strings.Contains(eth0, want) {
				t.Errorf("eth0 lacks %q:\n%s", want, eth0)
			}
		}
		if lo := run(t, "ip", "-n", ns, "link", "show", "dev", "lo"); !strings.Contains(lo, ",UP") {
			t.Errorf("lo is not up:\n%s", lo)
		}
		if routes := run(t, "ip", "-n", ns, "route", "show", "default"); !strings.Contains(routes, "default via 10.10.255.1 dev eth0") {
			t.Errorf("default route = %q, want via 10.10.255.1", routes)
		}
		if v := run(t, "ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"); strings.TrimSpace(v) != "1" {
			t.Errorf("IPv6 on eth0 not disabled: %q", v)
		}
		hostVeth := run(t, "ip", "-n", h1.netns, "link", "show", "dev", naming.HostVeth("web-1"))
		for _, want := range []string{"master br-vxlan", "mtu 1450", ",UP"} {
			if !strings.Contains(hostVeth, want) {
				t.Errorf("host veth lacks %q:\n%s", want, hostVeth)
			}
		}
		created, err := EnsureContainerNetns(ns)
		if err != nil || created {
			t.Errorf("EnsureContainerNetns of an existing namespace = %v, %v; want not created", created, err)
		}
	})

	t.Run("entries as the kernel has them", func(t *testing.T) {
		assertPeerProgrammed(t, h1, db.peer())
		assertPeerProgrammed(t, h2, web.peer())
		got, err := Entries(h1.ns, h1.cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := db.peer()
		if len(got) != 1 || got[0].IP != want.IP || got[0].Host != want.Host || got[0].MAC.String() != want.MAC.String() {
			t.Fatalf("Entries = %+v, want [%+v]", got, want)
		}
	})

	t.Run("containers reach each other and their gateway", func(t *testing.T) {
		pingEventually(t, web.link.Netns, db.link.Addr.Addr(), 56)
		pingEventually(t, db.link.Netns, web.link.Addr.Addr(), 56)
		pingEventually(t, web.link.Netns, h1.cfg.BridgeAddr.Addr(), 56)
	})

	t.Run("no broadcast crosses the underlay", func(t *testing.T) {
		run(t, "ip", "-n", web.link.Netns, "neigh", "flush", "all")
		capture := startCapture(t, h1)
		const pings = 3
		for range pings {
			pingEventually(t, web.link.Netns, db.link.Addr.Addr(), 56)
		}
		// The container had to ARP for db again: the host answered it.
		var answered bool
		for _, n := range neighbors(t, web.link.Netns, "eth0") {
			answered = answered || (n.Dst == "10.10.0.6" && n.LLAddr == db.link.MAC.String())
		}
		if !answered {
			t.Errorf("container web has no neighbor entry for db after the ping: %+v", neighbors(t, web.link.Netns, "eth0"))
		}
		// The replies prove the capture saw the traffic of these pings.
		var frames []vxlanFrame
		deadline := time.Now().Add(5 * time.Second)
		for {
			frames = capture.snapshot()
			in, out := 0, 0
			for _, f := range frames {
				if f.outgoing {
					out++
				} else {
					in++
				}
			}
			if in >= pings && out >= pings {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("capture saw %d outgoing and %d incoming VXLAN frames, want at least %d each", out, in, pings)
			}
			time.Sleep(20 * time.Millisecond)
		}
		capture.close()
		for _, f := range capture.snapshot() {
			if f.innerDst[0]&1 != 0 {
				t.Errorf("a broadcast/multicast frame to %s crossed the underlay (outer dst %s)", f.innerDst, f.outerDst)
			}
			if f.innerType == unix.ETH_P_ARP {
				t.Errorf("an ARP frame crossed the underlay (outer dst %s)", f.outerDst)
			}
			if f.outgoing && f.outerDst != h2.cfg.LocalAddr {
				t.Errorf("a frame went to %s, which is no peer's host", f.outerDst)
			}
		}
	})

	t.Run("MTU", func(t *testing.T) {
		mtu := h1.cfg.MTU
		var err error
		for range 5 {
			if err = ping(web.link.Netns, db.link.Addr.Addr(), mtu-28, true, time.Second); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("DF ping with payload %d (a full %d-byte packet) failed: %v", mtu-28, mtu, err)
		}
		err = ping(web.link.Netns, db.link.Addr.Addr(), mtu-27, true, time.Second)
		if !errors.Is(err, unix.EMSGSIZE) {
			t.Errorf("DF ping with payload %d: err = %v, want EMSGSIZE at the sender", mtu-27, err)
		}
	})

	t.Run("re-apply writes nothing", func(t *testing.T) {
		for _, ns := range []string{h1.netns, h2.netns, web.link.Netns, db.link.Netns} {
			waitSettled(t, ns)
		}
		before := map[string]int{
			"bridge":    ifindex(t, h1.netns, "br-vxlan"),
			"vxlan":     ifindex(t, h1.netns, h1.cfg.VXLANDevice()),
			"host veth": ifindex(t, h1.netns, naming.HostVeth("web-1")),
			"eth0":      ifindex(t, web.link.Netns, "eth0"),
		}
		hostWatch := watchWrites(t, h1.netns, before["vxlan"])
		containerWatch := watchWrites(t, web.link.Netns, 0)

		mustEnsureHost(t, h1, false)
		changed, err := AttachContainer(h1.ns, h1.cfg, web.link)
		if err != nil || changed {
			t.Errorf("second AttachContainer = %v, %v; want unchanged", changed, err)
		}
		mustSync(t, h1, []Peer{db.peer()}, SyncResult{})

		if w := hostWatch.writes(); len(w) != 0 {
			t.Errorf("re-apply wrote to the host namespace: %v", w)
		}
		if w := containerWatch.writes(); len(w) != 0 {
			t.Errorf("re-apply wrote to the container namespace: %v", w)
		}
		after := map[string]int{
			"bridge":    ifindex(t, h1.netns, "br-vxlan"),
			"vxlan":     ifindex(t, h1.netns, h1.cfg.VXLANDevice()),
			"host veth": ifindex(t, h1.netns, naming.HostVeth("web-1")),
			"eth0":      ifindex(t, web.link.Netns, "eth0"),
		}
		for name, index := range before {
			if after[name] != index {
				t.Errorf("%s ifindex changed from %d to %d", name, index, after[name])
			}
		}
	})

	t.Run("stale and moved peers", func(t *testing.T) {
		ghostIP := netip.MustParseAddr("10.10.0.99")
		ghost := Peer{IP: ghostIP, MAC: naming.MACFromIP(ghostIP), Host: h2.cfg.LocalAddr}
		mustSync(t, h1, []Peer{db.peer(), ghost}, SyncResult{Added: 1})
		assertPeerProgrammed(t, h1, ghost)

		moved := ghost
		moved.Host = netip.MustParseAddr("192.168.77.3")
		mustSync(t, h1, []Peer{db.peer(), moved}, SyncResult{Replaced: 1})
		assertPeerProgrammed(t, h1, moved)

		mustSync(t, h1, []Peer{db.peer()}, SyncResult{Deleted: 1})
		assertPeerAbsent(t, h1, ghost)
		assertPeerProgrammed(t, h1, db.peer())
		pingEventually(t, web.link.Netns, db.link.Addr.Addr(), 56)
	})

	t.Run("entries weft does not write are left alone", func(t *testing.T) {
		kernelOwn := func() []fdbRow {
			var own []fdbRow
			for _, r := range fdb(t, h1) {
				if r.State == "permanent" && !r.has("self") {
					own = append(own, r)
				}
			}
			return own
		}
		before := kernelOwn()
		if len(before) == 0 {
			t.Fatalf("no kernel-owned permanent fdb entry to watch: %+v", fdb(t, h1))
		}
		mustSync(t, h1, nil, SyncResult{Deleted: 1})
		assertPeerAbsent(t, h1, db.peer())
		if after := kernelOwn(); !reflect.DeepEqual(after, before) {
			t.Errorf("kernel's own fdb entries changed from %+v to %+v", before, after)
		}
		mustSync(t, h1, []Peer{db.peer()}, SyncResult{Added: 1})
	})

	t.Run("repairs drift", func(t *testing.T) {
		run(t, "ip", "-n", h1.netns, "link", "set", "br-vxlan", "down")
		run(t, "ip", "-n", h1.netns, "link", "set", h1.cfg.VXLANDevice(), "mtu", "1400")
		run(t, "bridge", "-n", h1.netns, "fdb", "append", "00:00:00:00:00:00", "dev", h1.cfg.VXLANDevice(), "dst", "192.168.77.2", "self", "permanent")
		run(t, "ip", "-n", h1.netns, "addr", "del", "10.10.255.1/16", "dev", "br-vxlan")
		run(t, "ip", "-n", h1.netns, "addr", "add", "10.10.255.1/24", "dev", "br-vxlan")
		run(t, "ip", "-n", h1.netns, "addr", "add", "10.10.200.1/16", "dev", "br-vxlan")
		mustEnsureHost(t, h1, true)
		mustEnsureHost(t, h1, false)
		bridgeAddrs := run(t, "ip", "-n", h1.netns, "-4", "addr", "show", "dev", "br-vxlan")
		if !strings.Contains(bridgeAddrs, "10.10.255.1/16") || strings.Contains(bridgeAddrs, "10.10.255.1/24") {
			t.Errorf("bridge address not repaired:\n%s", bridgeAddrs)
		}
		if !strings.Contains(bridgeAddrs, "10.10.200.1/16") {
			t.Errorf("EnsureHost removed an address it does not own:\n%s", bridgeAddrs)
		}
		for _, r := range fdb(t, h1) {
			if r.MAC == "00:00:00:00:00:00" {
				t.Errorf("default fdb entry survived EnsureHost: %+v", r)
			}
		}
		if link := run(t, "ip", "-n", h1.netns, "link", "show", "dev", h1.cfg.VXLANDevice()); !strings.Contains(link, "mtu 1450") {
			t.Errorf("vxlan MTU not restored:\n%s", link)
		}

		run(t, "ip", "-n", web.link.Netns, "addr", "add", "10.10.0.77/16", "dev", "eth0")
		run(t, "ip", "-n", web.link.Netns, "route", "replace", "default", "via", "10.10.0.1")
		changed, err := AttachContainer(h1.ns, h1.cfg, web.link)
		if err != nil || !changed {
			t.Fatalf("AttachContainer after address and route drift = %v, %v; want changed", changed, err)
		}
		if addrs := run(t, "ip", "-n", web.link.Netns, "-4", "addr", "show", "dev", "eth0"); strings.Contains(addrs, "10.10.0.77") {
			t.Errorf("extra container address survived:\n%s", addrs)
		}
		if routes := run(t, "ip", "-n", web.link.Netns, "route", "show", "default"); strings.TrimSpace(routes) != "default via 10.10.255.1 dev eth0" {
			t.Errorf("default route not repaired: %q", routes)
		}

		oldEth0 := ifindex(t, web.link.Netns, "eth0")
		run(t, "ip", "-n", web.link.Netns, "link", "del", "eth0")
		changed, err = AttachContainer(h1.ns, h1.cfg, web.link)
		if err != nil || !changed {
			t.Fatalf("AttachContainer after eth0 was deleted = %v, %v; want changed", changed, err)
		}
		if ifindex(t, web.link.Netns, "eth0") == oldEth0 {
			t.Errorf("eth0 was not recreated")
		}
		pingEventually(t, web.link.Netns, db.link.Addr.Addr(), 56)
	})

	t.Run("config change recreates the vxlan device", func(t *testing.T) {
		oldIndex := ifindex(t, h1.netns, h1.cfg.VXLANDevice())
		otherPort := *h1
		otherPort.cfg.Port = 4790
		mustEnsureHost(t, &otherPort, true)
		if ifindex(t, h1.netns, h1.cfg.VXLANDevice()) == oldIndex {
			t.Errorf("vxlan device kept its ifindex across a port change")
		}
		otherVNI := *h1
		otherVNI.cfg.VNI = 445
		mustEnsureHost(t, &otherVNI, true)
		links := run(t, "ip", "-n", h1.netns, "link", "show", "master", "br-vxlan")
		if strings.Contains(links, "vxlan444") || !strings.Contains(links, "vxlan445") {
			t.Errorf("after a VNI change the bridge ports are:\n%s", links)
		}
		mustEnsureHost(t, h1, true)
		if links := run(t, "ip", "-n", h1.netns, "link", "show"); strings.Contains(links, "vxlan445") {
			t.Errorf("old vxlan device left behind:\n%s", links)
		}
		// The entries died with the device they were on.
		mustSync(t, h1, []Peer{db.peer()}, SyncResult{Added: 1})
		pingEventually(t, web.link.Netns, db.link.Addr.Addr(), 56)
	})

	t.Run("detach", func(t *testing.T) {
		veths, err := HostVeths(h1.ns, h1.cfg)
		if err != nil || !slices.Equal(veths, []string{naming.HostVeth("web-1")}) {
			t.Fatalf("HostVeths = %v, %v; want [%s]", veths, err, naming.HostVeth("web-1"))
		}
		if err := DetachContainer(h1.ns, "web-1", web.link.Netns); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat("/run/netns/" + web.link.Netns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("container namespace still exists: %v", err)
		}
		if veths, err := HostVeths(h1.ns, h1.cfg); err != nil || len(veths) != 0 {
			t.Errorf("HostVeths after detach = %v, %v; want none", veths, err)
		}
		if err := DetachContainer(h1.ns, "web-1", web.link.Netns); err != nil {
			t.Errorf("second DetachContainer: %v", err)
		}
	})
}

func TestMisuseIsReportedWithTheFix(t *testing.T) {
	lab := newTestLab(t, 1500)
	h1 := lab.hosts[0]

	if _, err := SyncPeers(h1.ns, h1.cfg, nil); err == nil || !strings.Contains(err.Error(), "run EnsureHost first") {
		t.Errorf("SyncPeers before EnsureHost: err = %v, want a hint to run EnsureHost", err)
	}
	tooBig := *h1
	tooBig.cfg.MTU = 1460
	if _, err := EnsureHost(tooBig.ns, tooBig.cfg); err == nil || !strings.Contains(err.Error(), "use at most 1450") {
		t.Errorf("EnsureHost with MTU 1460 over a 1500 underlay: err = %v, want the largest valid MTU", err)
	}
	if out := run(t, "ip", "-n", h1.netns, "link", "show"); strings.Contains(out, "br-vxlan") {
		t.Errorf("a rejected config left devices behind:\n%s", out)
	}
	mustEnsureHost(t, h1, true)

	local := Peer{IP: netip.MustParseAddr("10.10.0.8"), MAC: naming.MACFromIP(netip.MustParseAddr("10.10.0.8")), Host: h1.cfg.LocalAddr}
	if _, err := SyncPeers(h1.ns, h1.cfg, []Peer{local}); err == nil || !strings.Contains(err.Error(), "leave local containers out") {
		t.Errorf("SyncPeers with a local container: err = %v", err)
	}

	missing := ContainerLink{
		Container: "ghost-1", Netns: naming.ContainerNetns(lab.cluster, "h", "ghost-1"),
		Addr: netip.MustParsePrefix("10.10.0.8/16"), MAC: local.MAC, MTU: h1.cfg.MTU,
	}
	if _, err := AttachContainer(h1.ns, h1.cfg, missing); err == nil || !strings.Contains(err.Error(), "run EnsureContainerNetns first") {
		t.Errorf("AttachContainer without its namespace: err = %v", err)
	}

	// A plain file where the namespace should be mounted (a crash between
	// creating the mount point and mounting) is replaced.
	t.Cleanup(func() { removeNetns(t, missing.Netns) })
	if err := os.WriteFile("/run/netns/"+missing.Netns, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	created, err := EnsureContainerNetns(missing.Netns)
	if err != nil || !created {
		t.Fatalf("EnsureContainerNetns over a stale file = %v, %v; want created", created, err)
	}
	// Without a gateway the container gets no default route.
	changed, err := AttachContainer(h1.ns, h1.cfg, missing)
	if err != nil || !changed {
		t.Fatalf("AttachContainer = %v, %v; want changed", changed, err)
	}
	if routes := run(t, "ip", "-n", missing.Netns, "route", "show", "default"); strings.TrimSpace(routes) != "" {
		t.Errorf("container without gateway has default route %q", routes)
	}
}
