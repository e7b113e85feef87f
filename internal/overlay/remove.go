package overlay

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RemoveHost deletes the host's vxlan device and bridge (what EnsureHost
// made) from the host namespace, for a host that outlives its cluster (a
// server of provider ssh). A device of another kind under one of the names
// is not weft's and is left alone. It reports what it deleted.
func RemoveHost(host netns.NsHandle, cfg HostConfig) (deleted []string, err error) {
	h, err := netlink.NewHandleAt(host)
	if err != nil {
		return nil, fmt.Errorf("opening netlink in the host namespace: %w", err)
	}
	defer h.Close()
	for _, dev := range []struct{ name, kind string }{{cfg.VXLANDevice(), "vxlan"}, {cfg.Bridge, "bridge"}} {
		link, err := h.LinkByName(dev.name)
		if isLinkNotFound(err) {
			continue
		}
		if err != nil {
			return deleted, fmt.Errorf("finding %s: %w", dev.name, err)
		}
		if link.Type() != dev.kind {
			continue
		}
		if err := h.LinkDel(link); err != nil {
			return deleted, fmt.Errorf("deleting %s %s: %w", dev.kind, dev.name, err)
		}
		deleted = append(deleted, dev.name)
	}
	return deleted, nil
}
