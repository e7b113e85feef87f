package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/naming"
)

// The underlay's neighbours are static: the router knows every host's MAC
// and every host knows its router's, so neither ever resolves the other
// with ARP.
//
// This keeps lab traffic off the real interfaces. A packet that waits for
// an ARP answer holds its route; if that route is replaced meanwhile (a VIP
// moving in the router), the kernel points the old route at its
// blackhole device, which lives in the root namespace. When the ARP
// request then fails, the "host unreachable" error for the waiting packet
// is built and routed in the root namespace, and leaves through its default
// route. A cut host stays unanswered either way: its packets are sent and
// dropped at the downed leg instead of queued.

// gatewayMAC is the fixed address of the router on a subnet (its gateway
// veth), which every host of the subnet has as a static neighbour.
func gatewayMAC(routerAddr netip.Addr) net.HardwareAddr {
	return naming.MACFromIP(routerAddr)
}

// bridgeMAC is the fixed address of a subnet's bridge in the router: set,
// so the bridge does not take a port's address as ports come and go, and
// unlike the gateway's (a bridge would keep frames for its own address).
func bridgeMAC(routerAddr netip.Addr) net.HardwareAddr {
	mac := gatewayMAC(routerAddr)
	mac[0] ^= 0x04 // still locally administered unicast
	return mac
}

// ensureBridgeMAC gives a router link its fixed address.
func ensureBridgeMAC(router *netlink.Handle, link netlink.Link, mac net.HardwareAddr) error {
	if link.Attrs().HardwareAddr.String() == mac.String() {
		return nil
	}
	if err := router.LinkSetHardwareAddr(link, mac); err != nil {
		return fmt.Errorf("setting the address of %s to %s: %w", link.Attrs().Name, mac, err)
	}
	return nil
}

// ensureStaticNeigh makes ip resolve to mac on the link with index, for
// good (NUD_PERMANENT), replacing what was learned.
func ensureStaticNeigh(h *netlink.Handle, linkIndex int, ip netip.Addr, mac net.HardwareAddr) error {
	n := &netlink.Neigh{
		LinkIndex:    linkIndex,
		Family:       netlink.FAMILY_V4,
		State:        netlink.NUD_PERMANENT,
		IP:           net.IP(ip.AsSlice()),
		HardwareAddr: mac,
	}
	if err := h.NeighSet(n); err != nil {
		return fmt.Errorf("setting neighbour %s at %s: %w", ip, mac, err)
	}
	return nil
}

// pruneStaticNeighs removes the permanent neighbours of a bridge whose
// address is not in keep: hosts that left the cluster file.
func pruneStaticNeighs(h *netlink.Handle, linkIndex int, keep map[netip.Addr]bool) error {
	neighs, err := retryDump(func() ([]netlink.Neigh, error) { return h.NeighList(linkIndex, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("listing neighbours: %w", err)
	}
	for _, n := range neighs {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.State&netlink.NUD_PERMANENT == 0 || keep[ip.Unmap()] {
			continue
		}
		if err := h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("removing neighbour %s: %w", ip, err)
		}
	}
	return nil
}
