// Package lab is the provider that builds a cluster's underlay on one machine
// out of network namespaces: a VPC router namespace with one bridge per
// subnet (the router's own address on a veth into that bridge, see
// subnetPlan), and one namespace per host whose eth0 is a veth into its
// subnet's bridge. It also runs one agent process per host inside the host's namespace
// and tears everything of a cluster down again.
//
// Nothing is ever created in the root network namespace: veth pairs are
// created inside the router namespace with their peer placed directly in the
// host namespace, and no route or address is added outside the lab.
package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/provider"
	"github.com/weft-dev/weft/internal/spec"
)

// Lab builds and removes lab clusters on this machine.
type Lab struct {
	StateRoot string // naming.DefaultStateRoot when empty
	Log       *slog.Logger
}

// HostInfo is one lab host as Ensure left it.
type HostInfo = provider.HostInfo

func (l *Lab) stateRoot() string {
	if l.StateRoot == "" {
		return naming.DefaultStateRoot
	}
	return l.StateRoot
}

func (l *Lab) log() *slog.Logger {
	if l.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Log
}

// Ensure makes the underlay of c exist. It is idempotent: objects that
// already match are left alone (same ifindex, same addresses), wrong or
// half-made ones are repaired. Hosts that left the file keep their namespace
// (their agent may still run; Destroy removes it) but lose their router link.
func (l *Lab) Ensure(ctx context.Context, c *spec.Cluster) (map[string]HostInfo, error) {
	topo, err := planTopology(c)
	if err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, filepath.Join(naming.StateDir(l.stateRoot(), topo.cluster), "lab.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := prepareNetnsDir(); err != nil {
		return nil, err
	}

	routerNs, created, err := ensureNamedNetns(topo.routerNetns)
	if err != nil {
		return nil, err
	}
	defer routerNs.Close()
	if created {
		l.log().Info("created router namespace", "netns", topo.routerNetns)
	}
	router, err := netlink.NewHandleAt(routerNs)
	if err != nil {
		return nil, fmt.Errorf("opening netlink in namespace %s: %w", topo.routerNetns, err)
	}
	defer router.Close()
	if err := setLinkUp(router, "lo"); err != nil {
		return nil, fmt.Errorf("in namespace %s: %w", topo.routerNetns, err)
	}
	if err := setSysctls(routerNs, map[string]string{"net.ipv4.ip_forward": "1"}); err != nil {
		return nil, fmt.Errorf("in namespace %s: %w", topo.routerNetns, err)
	}

	bridgeIndex := map[string]int{}  // subnet bridge -> its ifindex
	gatewayIndex := map[string]int{} // subnet bridge -> the ifindex of its gateway veth
	for _, s := range topo.subnets {
		idx, err := l.ensureSubnetBridge(router, s, topo.mtu)
		if err != nil {
			return nil, fmt.Errorf("in namespace %s: %w", topo.routerNetns, err)
		}
		bridgeIndex[s.bridge] = idx
		if gatewayIndex[s.bridge], err = l.ensureGatewayVeth(router, s, idx, topo.mtu); err != nil {
			return nil, fmt.Errorf("in namespace %s: %w", topo.routerNetns, err)
		}
	}

	hosts := make(map[string]HostInfo, len(topo.hosts))
	for _, h := range topo.hosts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ensuring lab hosts of cluster %s: %w", topo.cluster, err)
		}
		if err := l.ensureHost(router, h, bridgeIndex[h.bridge], gatewayIndex[h.bridge], topo.mtu); err != nil {
			return nil, fmt.Errorf("ensuring lab host %s: %w", h.name, err)
		}
		hosts[h.name] = HostInfo{Name: h.name, Netns: h.netns, Subnet: h.subnet, Address: h.addr.Addr(), MTU: topo.mtu}
	}
	if err := l.pruneRouter(router, topo); err != nil {
		return nil, fmt.Errorf("in namespace %s: %w", topo.routerNetns, err)
	}
	for _, s := range topo.subnets {
		keep := map[netip.Addr]bool{}
		for _, h := range topo.hosts {
			if h.bridge == s.bridge {
				keep[h.addr.Addr()] = true
			}
		}
		if err := pruneStaticNeighs(router, gatewayIndex[s.bridge], keep); err != nil {
			return nil, fmt.Errorf("in namespace %s, on %s: %w", topo.routerNetns, s.gateway, err)
		}
		// The bridge itself has no address (a lab built before the gateway
		// veths had its neighbours there).
		if err := pruneStaticNeighs(router, bridgeIndex[s.bridge], nil); err != nil {
			return nil, fmt.Errorf("in namespace %s, on bridge %s: %w", topo.routerNetns, s.bridge, err)
		}
	}
	l.warnAboutLeftHosts(topo)
	return hosts, nil
}

// warnAboutLeftHosts logs host namespaces of hosts no longer in the file;
// they are kept because their agent may still run.
func (l *Lab) warnAboutLeftHosts(topo topology) {
	want := map[string]bool{}
	for _, h := range topo.hosts {
		want[h.netns] = true
	}
	names, err := listNamedNetns(naming.HostNetns(topo.cluster, ""))
	if err != nil {
		l.log().Warn("listing host namespaces", "err", err)
		return
	}
	for _, name := range names {
		if !want[name] {
			l.log().Warn("host namespace is no longer in the cluster file and is cut off from the router; weft down removes it", "netns", name)
		}
	}
}

// ensureSubnetBridge makes the subnet's bridge in the router namespace,
// without an address (see subnetPlan), and returns its ifindex.
func (l *Lab) ensureSubnetBridge(router *netlink.Handle, s subnetPlan, mtu int) (int, error) {
	link, err := linkByName(router, s.bridge)
	if err != nil {
		return 0, err
	}
	if link != nil && link.Type() != "bridge" {
		l.log().Warn("replacing link that is not a bridge", "link", s.bridge, "type", link.Type())
		if err := router.LinkDel(link); err != nil {
			return 0, fmt.Errorf("deleting link %s: %w", s.bridge, err)
		}
		link = nil
	}
	if link == nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: s.bridge, MTU: mtu, HardwareAddr: bridgeMAC(s.routerAddr.Addr())}}
		if err := router.LinkAdd(br); err != nil {
			return 0, fmt.Errorf("creating bridge %s for subnet %s: %w", s.bridge, s.name, err)
		}
		if link, err = router.LinkByName(s.bridge); err != nil {
			return 0, fmt.Errorf("looking up bridge %s after creating it: %w", s.bridge, err)
		}
	}
	if err := ensureMTU(router, link, mtu); err != nil {
		return 0, err
	}
	if err := ensureBridgeMAC(router, link, bridgeMAC(s.routerAddr.Addr())); err != nil {
		return 0, err
	}
	if err := ensureOnlyAddr(router, link, netip.Prefix{}); err != nil {
		return 0, err
	}
	if err := router.LinkSetUp(link); err != nil {
		return 0, fmt.Errorf("setting bridge %s up: %w", s.bridge, err)
	}
	return link.Attrs().Index, nil
}

// ensureGatewayVeth makes the pair (router: s.gateway, the router's
// address and MAC on the subnet) <-> (s.port, a port of the subnet's
// bridge), and returns the gateway end's ifindex.
func (l *Lab) ensureGatewayVeth(router *netlink.Handle, s subnetPlan, bridgeIndex, mtu int) (int, error) {
	gw, err := linkByName(router, s.gateway)
	if err != nil {
		return 0, err
	}
	port, err := linkByName(router, s.port)
	if err != nil {
		return 0, err
	}
	if gw != nil && !vethPeers(gw, port) {
		l.log().Warn("replacing gateway link that is not a veth to its bridge port", "link", s.gateway)
		if err := router.LinkDel(gw); err != nil && !isLinkGone(err) {
			return 0, fmt.Errorf("deleting link %s: %w", s.gateway, err)
		}
		gw = nil
	}
	if gw == nil {
		if port != nil {
			if err := router.LinkDel(port); err != nil && !isLinkGone(err) {
				return 0, fmt.Errorf("deleting link %s: %w", s.port, err)
			}
		}
		pair := &netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: s.gateway, MTU: mtu, HardwareAddr: gatewayMAC(s.routerAddr.Addr())},
			PeerName:  s.port,
		}
		if err := router.LinkAdd(pair); err != nil {
			return 0, fmt.Errorf("creating veth %s <-> %s for subnet %s: %w", s.gateway, s.port, s.name, err)
		}
		if gw, err = router.LinkByName(s.gateway); err != nil {
			return 0, fmt.Errorf("looking up %s after creating it: %w", s.gateway, err)
		}
		if port, err = router.LinkByName(s.port); err != nil {
			return 0, fmt.Errorf("looking up %s after creating it: %w", s.port, err)
		}
	}
	for _, link := range []netlink.Link{gw, port} {
		if err := ensureMTU(router, link, mtu); err != nil {
			return 0, err
		}
	}
	if err := ensureBridgeMAC(router, gw, gatewayMAC(s.routerAddr.Addr())); err != nil {
		return 0, err
	}
	if port.Attrs().MasterIndex != bridgeIndex {
		if err := router.LinkSetMasterByIndex(port, bridgeIndex); err != nil {
			return 0, fmt.Errorf("attaching %s to bridge %s: %w", s.port, s.bridge, err)
		}
	}
	if err := ensureOnlyAddr(router, gw, s.routerAddr); err != nil {
		return 0, err
	}
	for _, link := range []netlink.Link{port, gw} {
		if err := router.LinkSetUp(link); err != nil {
			return 0, fmt.Errorf("setting %s up: %w", link.Attrs().Name, err)
		}
	}
	return gw.Attrs().Index, nil
}

// ensureHost makes one host namespace with its eth0 wired to its subnet's
// bridge, its address, default route and sysctls.
func (l *Lab) ensureHost(router *netlink.Handle, h hostPlan, bridgeIndex, gatewayIndex, mtu int) error {
	hostNs, created, err := ensureNamedNetns(h.netns)
	if err != nil {
		return err
	}
	defer hostNs.Close()
	if created {
		l.log().Info("created host namespace", "host", h.name, "netns", h.netns)
	}
	host, err := netlink.NewHandleAt(hostNs)
	if err != nil {
		return fmt.Errorf("opening netlink in namespace %s: %w", h.netns, err)
	}
	defer host.Close()
	if err := setLinkUp(host, "lo"); err != nil {
		return fmt.Errorf("in namespace %s: %w", h.netns, err)
	}
	err = setSysctls(hostNs, map[string]string{
		"net.ipv4.ip_forward":             "1",
		"net.ipv4.conf.all.rp_filter":     "2",
		"net.ipv4.conf.default.rp_filter": "2",
		// A connection whose peer was cut off gives up after about 12 s of
		// unanswered retransmissions (default: 15 min), and after a heal
		// resumes within one backoff of at most 6.4 s instead of 2 min:
		// etcd's peer streams across a cut rejoin in seconds.
		"net.ipv4.tcp_retries2": "5",
		// Frames bridged between a host's containers and its vxlan device
		// stay out of the IP hooks (conntrack and every inet chain):
		// nothing of weft filters bridged IP traffic there (the bridge
		// table does, at the bridge's own hook), and br_netfilter's pass
		// through them cost the overlay throughput on every segment.
		"net.bridge.bridge-nf-call-iptables":  "0",
		"net.bridge.bridge-nf-call-ip6tables": "0",
		"net.bridge.bridge-nf-call-arptables": "0",
	})
	if err != nil {
		return fmt.Errorf("in namespace %s: %w", h.netns, err)
	}
	eth0, err := l.ensureUnderlayVeth(router, host, hostNs, h, bridgeIndex, mtu)
	if err != nil {
		return err
	}
	if err := ensureOnlyAddr(host, eth0, h.addr); err != nil {
		return fmt.Errorf("in namespace %s: %w", h.netns, err)
	}
	if err := ensureDefaultRoute(host, eth0, h.gateway); err != nil {
		return fmt.Errorf("in namespace %s: %w", h.netns, err)
	}
	// Static neighbours both ways (neigh.go says why).
	if err := ensureStaticNeigh(host, eth0.Attrs().Index, h.gateway, gatewayMAC(h.gateway)); err != nil {
		return fmt.Errorf("in namespace %s: %w", h.netns, err)
	}
	if err := ensureStaticNeigh(router, gatewayIndex, h.addr.Addr(), eth0.Attrs().HardwareAddr); err != nil {
		return fmt.Errorf("on the router, for host %s: %w", h.name, err)
	}
	return nil
}

// ensureUnderlayVeth makes the pair (router: h.routerVeth on the subnet
// bridge) <-> (host: eth0). A pair whose ends do not point at each other is
// deleted and created again; the pair is created from the router namespace
// with its peer born inside the host namespace, so no end ever exists in the
// root namespace.
func (l *Lab) ensureUnderlayVeth(router, host *netlink.Handle, hostNs netns.NsHandle, h hostPlan, bridgeIndex, mtu int) (netlink.Link, error) {
	routerEnd, err := linkByName(router, h.routerVeth)
	if err != nil {
		return nil, err
	}
	hostEnd, err := linkByName(host, naming.HostUnderlayIface)
	if err != nil {
		return nil, err
	}
	if !vethPeers(routerEnd, hostEnd) {
		if routerEnd != nil {
			l.log().Warn("replacing broken underlay link", "host", h.name, "link", h.routerVeth)
			if err := router.LinkDel(routerEnd); err != nil {
				return nil, fmt.Errorf("deleting stale link %s: %w", h.routerVeth, err)
			}
		}
		// Deleting the router end also takes its peer; look again.
		if hostEnd, err = linkByName(host, naming.HostUnderlayIface); err != nil {
			return nil, err
		}
		if hostEnd != nil {
			l.log().Warn("replacing broken underlay link", "host", h.name, "netns", h.netns, "link", naming.HostUnderlayIface)
			if err := host.LinkDel(hostEnd); err != nil {
				return nil, fmt.Errorf("deleting stale link %s in namespace %s: %w", naming.HostUnderlayIface, h.netns, err)
			}
		}
		pair := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: h.routerVeth, MTU: mtu, MasterIndex: bridgeIndex},
			PeerName:      naming.HostUnderlayIface,
			PeerNamespace: netlink.NsFd(hostNs),
		}
		if err := router.LinkAdd(pair); err != nil {
			return nil, fmt.Errorf("creating veth pair %s <-> %s in namespace %s: %w", h.routerVeth, naming.HostUnderlayIface, h.netns, err)
		}
		if routerEnd, err = router.LinkByName(h.routerVeth); err != nil {
			return nil, fmt.Errorf("looking up link %s after creating it: %w", h.routerVeth, err)
		}
		if hostEnd, err = host.LinkByName(naming.HostUnderlayIface); err != nil {
			return nil, fmt.Errorf("looking up %s in namespace %s after creating it: %w", naming.HostUnderlayIface, h.netns, err)
		}
	}
	if err := ensureMTU(router, routerEnd, mtu); err != nil {
		return nil, err
	}
	if routerEnd.Attrs().MasterIndex != bridgeIndex {
		if err := router.LinkSetMasterByIndex(routerEnd, bridgeIndex); err != nil {
			return nil, fmt.Errorf("attaching %s to bridge of subnet %s: %w", h.routerVeth, h.subnet, err)
		}
	}
	if err := router.LinkSetUp(routerEnd); err != nil {
		return nil, fmt.Errorf("setting %s up: %w", h.routerVeth, err)
	}
	if err := ensureMTU(host, hostEnd, mtu); err != nil {
		return nil, fmt.Errorf("in namespace %s: %w", h.netns, err)
	}
	if err := host.LinkSetUp(hostEnd); err != nil {
		return nil, fmt.Errorf("setting %s up in namespace %s: %w", naming.HostUnderlayIface, h.netns, err)
	}
	return hostEnd, nil
}

// vethPeers reports whether a and b are the two ends of one veth pair. The
// check is by mutual peer ifindex, which is what a half-made or foreign pair
// fails.
func vethPeers(a, b netlink.Link) bool {
	if a == nil || b == nil || a.Type() != "veth" || b.Type() != "veth" {
		return false
	}
	return a.Attrs().ParentIndex == b.Attrs().Index && b.Attrs().ParentIndex == a.Attrs().Index
}

// pruneRouter removes router links of subnets and hosts that left the file.
// Only links with weft's own prefixes are considered.
func (l *Lab) pruneRouter(router *netlink.Handle, topo topology) error {
	want := map[string]bool{}
	for _, s := range topo.subnets {
		want[s.bridge], want[s.gateway], want[s.port] = true, true, true
	}
	for _, h := range topo.hosts {
		want[h.routerVeth] = true
	}
	links, err := retryDump(router.LinkList)
	if err != nil {
		return fmt.Errorf("listing links: %w", err)
	}
	for _, link := range links {
		name := link.Attrs().Name
		if want[name] || !slices.ContainsFunc(routerLinkPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		l.log().Info("removing router link no longer in the cluster file", "link", name)
		if err := router.LinkDel(link); err != nil && !isLinkGone(err) {
			return fmt.Errorf("deleting link %s: %w", name, err)
		}
	}
	return nil
}

// linkByName returns the link, or nil when there is none by that name.
func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	link, err := h.LinkByName(name)
	if err != nil {
		if isLinkGone(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("looking up link %s: %w", name, err)
	}
	return link, nil
}

func isLinkGone(err error) bool {
	var notFound netlink.LinkNotFoundError
	return errors.As(err, &notFound) || errors.Is(err, unix.ENODEV)
}

func setLinkUp(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("looking up link %s: %w", name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting link %s up: %w", name, err)
	}
	return nil
}

func ensureMTU(h *netlink.Handle, link netlink.Link, mtu int) error {
	if link.Attrs().MTU == mtu {
		return nil
	}
	if err := h.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("setting MTU %d on %s: %w", mtu, link.Attrs().Name, err)
	}
	return nil
}

// ensureOnlyAddr leaves want as the only global IPv4 address on link,
// keeping it untouched when already there; a zero want removes them all.
func ensureOnlyAddr(h *netlink.Handle, link netlink.Link, want netip.Prefix) error {
	name := link.Attrs().Name
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("listing addresses of %s: %w", name, err)
	}
	present := false
	for _, a := range addrs {
		got, ok := prefixOf(a)
		if ok && got == want {
			present = true
			continue
		}
		if a.Scope != int(netlink.SCOPE_UNIVERSE) {
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("removing stale address %s from %s: %w", a.IPNet, name, err)
		}
	}
	if present || !want.IsValid() {
		return nil
	}
	addr, err := netlink.ParseAddr(want.String())
	if err != nil {
		return fmt.Errorf("parsing address %s: %w", want, err)
	}
	if err := h.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("adding address %s to %s: %w", want, name, err)
	}
	return nil
}

func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), bits), true
}

// ensureDefaultRoute makes the main table's IPv4 default route go via gw on
// link, replacing any other default route.
func ensureDefaultRoute(h *netlink.Handle, link netlink.Link, gw netip.Addr) error {
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("listing routes: %w", err)
	}
	for _, r := range routes {
		if !isDefaultRoute(r) {
			continue
		}
		gwOf, _ := netip.AddrFromSlice(r.Gw)
		if gwOf.Unmap() == gw && r.LinkIndex == link.Attrs().Index && len(r.MultiPath) == 0 {
			return nil
		}
	}
	route := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Gw:        gw.AsSlice(),
		Table:     unix.RT_TABLE_MAIN,
	}
	if err := h.RouteReplace(route); err != nil {
		return fmt.Errorf("setting default route via %s dev %s: %w", gw, link.Attrs().Name, err)
	}
	return nil
}

func isDefaultRoute(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

// retryDump repeats a netlink dump the kernel reported as interrupted by a
// concurrent change; its partial result must not be acted upon.
func retryDump[T any](dump func() (T, error)) (T, error) {
	var result T
	var err error
	for range 5 {
		result, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return result, err
		}
	}
	return result, err
}

// lockFile takes an exclusive flock on path (creating it), waiting until it
// is free or ctx ends; two `weft up` of one cluster must not interleave.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file %s: %w", path, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s (another weft command holds it): %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
