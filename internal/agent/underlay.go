package agent

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// underlayLink is the interface of the agent's namespace that holds the
// host's underlay address: the VXLAN device is bound to it and the overlay
// MTU fits inside its MTU. In the lab it is eth0 of the host namespace; on a
// server of provider ssh, whichever interface carries the address.
type underlayLink struct {
	Name string
	MTU  int
}

// findUnderlay looks up the interface of ns holding addr.
func findUnderlay(ns netns.NsHandle, addr netip.Addr) (underlayLink, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return underlayLink{}, fmt.Errorf("opening netlink in the host namespace: %w", err)
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return underlayLink{}, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap() != addr {
			continue
		}
		link, err := h.LinkByIndex(a.LinkIndex)
		if err != nil {
			return underlayLink{}, fmt.Errorf("reading the interface of %s: %w", addr, err)
		}
		return underlayLink{Name: link.Attrs().Name, MTU: link.Attrs().MTU}, nil
	}
	return underlayLink{}, fmt.Errorf("no interface holds the host's address %s: give the host its own underlay address in the cluster file", addr)
}

// underlay returns the host's underlay interface, found once; until it is
// found (or when it cannot be), the lab's eth0 with the file's MTU.
func (a *Agent) underlay(c *spec.Cluster) underlayLink {
	a.underlayOnce.Do(func() {
		link, err := a.kernel.Underlay(a.self.Address)
		if err != nil {
			a.log.Warn("finding the underlay interface; using "+naming.HostUnderlayIface, "err", err)
			return
		}
		a.underlayLink = &link
	})
	if a.underlayLink == nil {
		return underlayLink{Name: naming.HostUnderlayIface, MTU: c.Network.MTU}
	}
	return *a.underlayLink
}

// overlayMTU is the file's overlay MTU, lowered to what fits inside the
// underlay interface's MTU (its MTU - VXLAN overhead).
func overlayMTU(c *spec.Cluster, u underlayLink) int {
	return min(c.Overlay.MTU, u.MTU-spec.VXLANOverhead)
}
