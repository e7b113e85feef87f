package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
)

// reference is a two-host overlay built by hand with plain kernel objects
// and no weft: a router namespace, two host namespaces each with eth0, a
// bridge and a vxlan device (learning off, ARP answered by the vxlan
// device), and one container namespace per host on a veth, with the same
// three static entries per peer that weft programs. Its router has one of
// two shapes:
//
//   - refLab copies the lab: a bridge per subnet (the hosts' legs are its
//     ports) and the router's address on a veth into that bridge;
//   - refRouted is the fastest the kernel allows between two subnets: the
//     router's address on each host's leg itself, no bridge on the path.
type reference struct {
	namespaces  []string // every namespace made, removed by remove
	srcNetns    string
	dstNetns    string
	srcHost     string // host namespaces, for the MTU report
	dstIP       netip.Addr
	underlayMTU int
	overlayMTU  int
}

type refHost struct {
	netns     string
	subnet    netip.Prefix
	addr      netip.Addr
	container string
	ip        netip.Addr
}

const (
	refVNI    = 444
	refPort   = 4789
	refBridge = "br-vxlan"
)

// The router shapes of a reference (see reference).
type refShape string

const (
	refLab    refShape = "l"
	refRouted refShape = "r"
)

// buildReference creates the reference in namespaces named
// weftref-<suffix>-<shape>-*. On error it removes what it made.
func buildReference(suffix string, shape refShape, underlayMTU int) (ref *reference, err error) {
	prefix := "weftref-" + suffix + "-" + string(shape) + "-"
	r := &reference{underlayMTU: underlayMTU, overlayMTU: underlayMTU - 50}
	defer func() {
		if err != nil {
			if rmErr := r.remove(); rmErr != nil {
				err = errors.Join(err, rmErr)
			}
		}
	}()
	hosts := []refHost{
		{netns: prefix + "h1", subnet: netip.MustParsePrefix("192.168.1.0/24"), addr: netip.MustParseAddr("192.168.1.10"),
			container: prefix + "c1", ip: netip.MustParseAddr("10.10.0.1")},
		{netns: prefix + "h2", subnet: netip.MustParsePrefix("192.168.2.0/24"), addr: netip.MustParseAddr("192.168.2.10"),
			container: prefix + "c2", ip: netip.MustParseAddr("10.10.0.2")},
	}
	r.srcNetns, r.dstNetns, r.srcHost, r.dstIP = hosts[0].container, hosts[1].container, hosts[0].netns, hosts[1].ip

	router, err := r.newNetns(prefix + "r")
	if err != nil {
		return nil, err
	}
	defer router.Close()
	if err := setSysctl(router, prefix+"r", "net/ipv4/ip_forward", "1"); err != nil {
		return nil, err
	}
	rh, err := netlink.NewHandleAt(router)
	if err != nil {
		return nil, fmt.Errorf("opening netlink in namespace %s: %w", prefix+"r", err)
	}
	defer rh.Close()
	if err := upByName(rh, "lo"); err != nil {
		return nil, err
	}
	for i, h := range hosts {
		if err := r.buildHost(rh, prefix, shape, i, h, hosts[1-i]); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// buildHost makes one host: its leg on the router, its overlay and its
// container, and the static entries towards the other host's container.
func (r *reference) buildHost(router *netlink.Handle, prefix string, shape refShape, i int, h, peer refHost) error {
	gw := h.subnet.Addr().Next()
	routerLeg := fmt.Sprintf("h-%d", i+1)
	legMaster := 0
	if shape == refLab {
		subnetBridge := fmt.Sprintf("s-%d", i+1)
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: subnetBridge, MTU: r.underlayMTU}}
		if err := router.LinkAdd(br); err != nil {
			return fmt.Errorf("creating bridge %s in %s: %w", subnetBridge, prefix+"r", err)
		}
		if err := upByName(router, subnetBridge); err != nil {
			return err
		}
		gwVeth, port := fmt.Sprintf("g-%d", i+1), fmt.Sprintf("p-%d", i+1)
		pair := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: gwVeth, MTU: r.underlayMTU}, PeerName: port}
		if err := router.LinkAdd(pair); err != nil {
			return fmt.Errorf("creating veth %s <-> %s in %s: %w", gwVeth, port, prefix+"r", err)
		}
		portLink, err := router.LinkByName(port)
		if err != nil {
			return fmt.Errorf("reading %s in %s: %w", port, prefix+"r", err)
		}
		if err := router.LinkSetMasterByIndex(portLink, br.Attrs().Index); err != nil {
			return fmt.Errorf("attaching %s to %s in %s: %w", port, subnetBridge, prefix+"r", err)
		}
		if err := upByName(router, port); err != nil {
			return err
		}
		if err := addAddrUp(router, gwVeth, netip.PrefixFrom(gw, h.subnet.Bits())); err != nil {
			return err
		}
		legMaster = br.Attrs().Index
	}

	hostNs, err := r.newNetns(h.netns)
	if err != nil {
		return err
	}
	defer hostNs.Close()
	for key, value := range map[string]string{"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/rp_filter": "2", "net/ipv4/conf/default/rp_filter": "2"} {
		if err := setSysctl(hostNs, h.netns, key, value); err != nil {
			return err
		}
	}
	hh, err := netlink.NewHandleAt(hostNs)
	if err != nil {
		return fmt.Errorf("opening netlink in namespace %s: %w", h.netns, err)
	}
	defer hh.Close()
	if err := upByName(hh, "lo"); err != nil {
		return err
	}
	pair := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: routerLeg, MTU: r.underlayMTU, MasterIndex: legMaster},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(hostNs),
	}
	if err := router.LinkAdd(pair); err != nil {
		return fmt.Errorf("creating veth %s <-> %s/eth0: %w", routerLeg, h.netns, err)
	}
	if shape == refRouted {
		if err := addAddrUp(router, routerLeg, netip.PrefixFrom(gw, h.subnet.Bits())); err != nil {
			return err
		}
	} else if err := upByName(router, routerLeg); err != nil {
		return err
	}
	if err := addAddrUp(hh, "eth0", netip.PrefixFrom(h.addr, h.subnet.Bits())); err != nil {
		return err
	}
	eth0, err := hh.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("reading eth0 in %s: %w", h.netns, err)
	}
	if err := hh.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.IP(gw.AsSlice())}); err != nil {
		return fmt.Errorf("adding the default route via %s in %s: %w", gw, h.netns, err)
	}

	bridge := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: refBridge, MTU: r.overlayMTU}}
	if err := hh.LinkAdd(bridge); err != nil {
		return fmt.Errorf("creating bridge %s in %s: %w", refBridge, h.netns, err)
	}
	vx := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: naming.VXLANDevice(refVNI), MTU: r.overlayMTU, MasterIndex: bridge.Attrs().Index},
		VxlanId:      refVNI,
		VtepDevIndex: eth0.Attrs().Index,
		SrcAddr:      net.IP(h.addr.AsSlice()),
		Port:         refPort,
		Learning:     false,
		Proxy:        true,
	}
	if err := hh.LinkAdd(vx); err != nil {
		return fmt.Errorf("creating vxlan device %s in %s: %w", vx.Name, h.netns, err)
	}
	for _, name := range []string{refBridge, vx.Name} {
		if err := upByName(hh, name); err != nil {
			return err
		}
	}

	containerNs, err := r.newNetns(h.container)
	if err != nil {
		return err
	}
	defer containerNs.Close()
	ch, err := netlink.NewHandleAt(containerNs)
	if err != nil {
		return fmt.Errorf("opening netlink in namespace %s: %w", h.container, err)
	}
	defer ch.Close()
	if err := upByName(ch, "lo"); err != nil {
		return err
	}
	hostLeg := "vc"
	cveth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostLeg, MTU: r.overlayMTU, MasterIndex: bridge.Attrs().Index},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(containerNs),
	}
	if err := hh.LinkAdd(cveth); err != nil {
		return fmt.Errorf("creating veth %s <-> %s/eth0: %w", hostLeg, h.container, err)
	}
	if err := upByName(hh, hostLeg); err != nil {
		return err
	}
	inner, err := ch.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("reading eth0 in %s: %w", h.container, err)
	}
	if err := ch.LinkSetHardwareAddr(inner, naming.MACFromIP(h.ip)); err != nil {
		return fmt.Errorf("setting the MAC of eth0 in %s: %w", h.container, err)
	}
	if err := addAddrUp(ch, "eth0", netip.PrefixFrom(h.ip, 16)); err != nil {
		return err
	}

	peerMAC := naming.MACFromIP(peer.ip)
	entries := []*netlink.Neigh{
		{LinkIndex: vx.Attrs().Index, Family: unix.AF_BRIDGE, Flags: unix.NTF_SELF, State: unix.NUD_PERMANENT,
			IP: net.IP(peer.addr.AsSlice()), HardwareAddr: peerMAC},
		{LinkIndex: vx.Attrs().Index, MasterIndex: bridge.Attrs().Index, Family: unix.AF_BRIDGE, Flags: unix.NTF_MASTER,
			State: unix.NUD_NOARP, HardwareAddr: peerMAC},
		{LinkIndex: vx.Attrs().Index, Family: unix.AF_INET, State: unix.NUD_PERMANENT,
			IP: net.IP(peer.ip.AsSlice()), HardwareAddr: peerMAC},
	}
	for _, e := range entries {
		if err := hh.NeighSet(e); err != nil {
			return fmt.Errorf("adding the static entry for %s (%s) on %s in %s: %w", peer.ip, peerMAC, vx.Name, h.netns, err)
		}
	}
	return nil
}

// newNetns creates a named namespace and remembers it for remove.
func (r *reference) newNetns(name string) (netns.NsHandle, error) {
	ns, err := nsthread.NewNamed(name)
	if err == nil {
		r.namespaces = append(r.namespaces, name)
	}
	return ns, err
}

// remove deletes every namespace of the reference; their links go with them.
func (r *reference) remove() error {
	var errs []error
	for _, name := range r.namespaces {
		if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing network namespace %s: %w", name, err))
		}
	}
	r.namespaces = nil
	return errors.Join(errs...)
}

func setSysctl(ns netns.NsHandle, nsName, key, value string) error {
	return nsthread.Do(ns, func() error {
		if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0o644); err != nil {
			return fmt.Errorf("setting %s=%s in %s: %w", key, value, nsName, err)
		}
		return nil
	})
}

func upByName(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("reading link %s: %w", name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting link %s up: %w", name, err)
	}
	return nil
}

func addAddrUp(h *netlink.Handle, name string, addr netip.Prefix) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("reading link %s: %w", name, err)
	}
	ipnet := &net.IPNet{IP: net.IP(addr.Addr().AsSlice()), Mask: net.CIDRMask(addr.Bits(), 32)}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet}); err != nil {
		return fmt.Errorf("adding address %s to %s: %w", addr, name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting link %s up: %w", name, err)
	}
	return nil
}
