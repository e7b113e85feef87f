package agent

import (
	"net/netip"

	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/overlay"
)

// kernel is this host's network namespace as reconciling programs it: the
// overlay device and bridge, the entries towards the other hosts'
// containers, and each local container's namespace and link. overlayKernel
// is the real one; the tests use a fake that records what it is asked, so
// reconciling is tested without root.
type kernel interface {
	// EnsureHost creates or repairs the vxlan device and the bridge.
	EnsureHost(hc overlay.HostConfig) error
	// SyncPeers makes the device's entries exactly peers.
	SyncPeers(hc overlay.HostConfig, peers []overlay.Peer) (overlay.SyncResult, error)
	// EnsureContainerNetns creates the named network namespace of a
	// container, unless it exists.
	EnsureContainerNetns(netns string) error
	// AttachContainer creates or repairs the container's link to the bridge.
	AttachContainer(hc overlay.HostConfig, link overlay.ContainerLink) error
	// DetachContainer removes the container's link and its namespace.
	DetachContainer(container, netns string) error
	// Underlay is the interface holding the host's underlay address.
	Underlay(addr netip.Addr) (underlayLink, error)
}

// overlayKernel is kernel in the host's network namespace, through
// internal/overlay.
type overlayKernel struct{ host netns.NsHandle }

func (k overlayKernel) EnsureHost(hc overlay.HostConfig) error {
	_, err := overlay.EnsureHost(k.host, hc)
	return err
}

func (k overlayKernel) SyncPeers(hc overlay.HostConfig, peers []overlay.Peer) (overlay.SyncResult, error) {
	return overlay.SyncPeers(k.host, hc, peers)
}

func (overlayKernel) EnsureContainerNetns(name string) error {
	_, err := overlay.EnsureContainerNetns(name)
	return err
}

func (k overlayKernel) AttachContainer(hc overlay.HostConfig, link overlay.ContainerLink) error {
	_, err := overlay.AttachContainer(k.host, hc, link)
	return err
}

func (k overlayKernel) DetachContainer(container, netns string) error {
	return overlay.DetachContainer(k.host, container, netns)
}

func (k overlayKernel) Underlay(addr netip.Addr) (underlayLink, error) {
	return findUnderlay(k.host, addr)
}
