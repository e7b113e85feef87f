package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
)

// netnsRunDir is where named network namespaces are bind-mounted, as
// iproute2 does, so `ip netns exec` and weft see the same namespaces.
const netnsRunDir = "/run/netns"

// ContainerLink describes a container's link to its host's bridge.
type ContainerLink struct {
	Container string           // container name; host-side veth = naming.HostVeth(Container)
	Netns     string           // named netns of the container (naming.ContainerNetns)
	Addr      netip.Prefix     // e.g. 10.10.0.5/16
	MAC       net.HardwareAddr // naming.MACFromIP(addr)
	MTU       int
	Gateway   netip.Addr // optional default route via the host bridge address; zero = no default route
}

func (l ContainerLink) validate() error {
	var problems []error
	if l.Container == "" {
		problems = append(problems, errors.New("container link: container name is empty"))
	}
	if err := validateNetnsName(l.Netns); err != nil {
		problems = append(problems, fmt.Errorf("container %s: %w", l.Container, err))
	}
	if !l.Addr.IsValid() || !l.Addr.Addr().Is4() {
		problems = append(problems, fmt.Errorf("container %s: address %v is not an IPv4 prefix like 10.10.0.5/16", l.Container, l.Addr))
	}
	if len(l.MAC) != 6 || isZeroMAC(l.MAC) || l.MAC[0]&1 != 0 {
		problems = append(problems, fmt.Errorf("container %s: MAC %q is not a unicast Ethernet address: derive it with naming.MACFromIP", l.Container, l.MAC))
	}
	if l.MTU < minIPv4MTU {
		problems = append(problems, fmt.Errorf("container %s: MTU %d is below the IPv4 minimum %d: use the overlay MTU", l.Container, l.MTU, minIPv4MTU))
	}
	if l.Gateway.IsValid() && (!l.Gateway.Is4() || !l.Addr.Contains(l.Gateway) || l.Gateway == l.Addr.Addr()) {
		problems = append(problems, fmt.Errorf("container %s: gateway %s is not another address inside %s: use the host bridge address, or none", l.Container, l.Gateway, l.Addr.Masked()))
	}
	return errors.Join(problems...)
}

func validateNetnsName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("network namespace name %q is invalid: use a plain name such as naming.ContainerNetns gives", name)
	}
	return nil
}

// EnsureContainerNetns creates the named network namespace if missing,
// bind-mounted at /run/netns/<name> like `ip netns add`, without leaving the
// calling thread in it.
func EnsureContainerNetns(name string) (created bool, err error) {
	if err := validateNetnsName(name); err != nil {
		return false, err
	}
	path := filepath.Join(netnsRunDir, name)
	if isNetnsMount(path) {
		return false, nil
	}
	// A file that is not a namespace mount is what a crash between creating
	// the mount point and mounting leaves behind.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("removing stale network namespace file %s: %w", path, err)
	}
	if err := ensureSharedNetnsDir(); err != nil {
		return false, err
	}
	ns, err := nsthread.NewNamed(name)
	if err != nil {
		return false, err
	}
	ns.Close()
	return true, nil
}

// ensureSharedNetnsDir makes /run/netns a shared mount, as `ip netns add`
// does, so that namespace mounts and unmounts propagate to mount namespaces
// copied from this one (containers): otherwise a container's copy of another
// container's netns mount would keep that namespace alive after deletion.
func ensureSharedNetnsDir() error {
	if err := os.MkdirAll(netnsRunDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", netnsRunDir, err)
	}
	err := unix.Mount("", netnsRunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err := unix.Mount(netnsRunDir, netnsRunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s onto itself: %w", netnsRunDir, err)
		}
		err = unix.Mount("", netnsRunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("making %s a shared mount: %w", netnsRunDir, err)
	}
	return nil
}

func isNetnsMount(path string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(path, &fs) == nil && fs.Type == unix.NSFS_MAGIC
}

// disableIPv6 sets net.ipv6.conf.all.disable_ipv6=1 in ns; the kernel
// applies "all" to every existing device and to "default", so links moved in
// later start without IPv6 too. A kernel without IPv6 needs nothing.
func disableIPv6(ns netns.NsHandle) (changed bool, err error) {
	const all = "/proc/sys/net/ipv6/conf/all/disable_ipv6"
	const dflt = "/proc/sys/net/ipv6/conf/default/disable_ipv6"
	err = nsthread.Do(ns, func() error {
		allValue, err := os.ReadFile(all)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		dfltValue, err := os.ReadFile(dflt)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(allValue)) == "1" && strings.TrimSpace(string(dfltValue)) == "1" {
			return nil
		}
		changed = true
		return os.WriteFile(all, []byte("1\n"), 0o644)
	})
	if err != nil {
		return changed, fmt.Errorf("disabling IPv6 in the container namespace: %w", err)
	}
	return changed, nil
}

// AttachContainer makes the container's veth pair exist and match link: the
// host end (naming.HostVeth) a port of the bridge, the container end eth0
// with link's address, MAC and MTU, lo up, IPv6 off in the container
// namespace, and the default route via link.Gateway if set. It writes only
// what differs and reports whether it wrote anything; a broken pair (one end
// missing, or eth0 not paired with the host end) is recreated.
func AttachContainer(host netns.NsHandle, cfg HostConfig, link ContainerLink) (changed bool, err error) {
	if err := link.validate(); err != nil {
		return false, err
	}
	hostHandle, err := netlink.NewHandleAt(host)
	if err != nil {
		return false, fmt.Errorf("opening netlink in the host namespace: %w", err)
	}
	defer hostHandle.Close()
	bridge, err := hostHandle.LinkByName(cfg.Bridge)
	if err != nil {
		return false, fmt.Errorf("finding bridge %s for container %s: %w (run EnsureHost first)", cfg.Bridge, link.Container, err)
	}
	containerNs, err := netns.GetFromName(link.Netns)
	if err != nil {
		return false, fmt.Errorf("opening network namespace %s of container %s: %w (run EnsureContainerNetns first)", link.Netns, link.Container, err)
	}
	defer containerNs.Close()
	containerHandle, err := netlink.NewHandleAt(containerNs)
	if err != nil {
		return false, fmt.Errorf("opening netlink in network namespace %s: %w", link.Netns, err)
	}
	defer containerHandle.Close()

	// Namespace-wide settings first, so that eth0 arrives without IPv6.
	changed, err = disableIPv6(containerNs)
	if err != nil {
		return changed, fmt.Errorf("container %s: %w", link.Container, err)
	}
	lo, err := containerHandle.LinkByName("lo")
	if err != nil {
		return changed, fmt.Errorf("finding lo of container %s: %w", link.Container, err)
	}
	loChanged, err := ensureUp(containerHandle, lo)
	changed = changed || loChanged
	if err != nil {
		return changed, fmt.Errorf("bringing lo of container %s up: %w", link.Container, err)
	}

	hostEnd, inner, err := findPair(hostHandle, containerHandle, link.Container)
	if err != nil {
		return changed, err
	}
	if hostEnd == nil {
		if err := removeVeths(hostHandle, containerHandle, link.Container); err != nil {
			return changed, err
		}
		hostEnd, inner, err = createPair(hostHandle, containerHandle, containerNs, link)
		changed = true
		if err != nil {
			return changed, err
		}
	}

	hostChanged, err := ensureHostEnd(hostHandle, hostEnd, bridge, link)
	changed = changed || hostChanged
	if err != nil {
		return changed, err
	}
	innerChanged, err := ensureInnerEnd(containerHandle, inner, link)
	changed = changed || innerChanged
	return changed, err
}

// findPair returns the two ends of the container's veth pair, or nils when
// they do not exist as a pair (then the pieces are to be removed and the pair
// recreated). Each end's IFLA_LINK names the other's ifindex.
func findPair(hostHandle, containerHandle *netlink.Handle, container string) (hostEnd, inner netlink.Link, err error) {
	hostName := naming.HostVeth(container)
	hostEnd, err = hostHandle.LinkByName(hostName)
	if isLinkNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading veth %s of container %s: %w", hostName, container, err)
	}
	inner, err = containerHandle.LinkByName(naming.ContainerIface)
	if isLinkNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s of container %s: %w", naming.ContainerIface, container, err)
	}
	if hostEnd.Type() != "veth" || inner.Type() != "veth" ||
		hostEnd.Attrs().ParentIndex != inner.Attrs().Index ||
		inner.Attrs().ParentIndex != hostEnd.Attrs().Index {
		return nil, nil, nil
	}
	return hostEnd, inner, nil
}

// removeVeths deletes every piece of a container's veth pair wherever a
// crash may have left it: deleting one end of a veth deletes both.
func removeVeths(hostHandle, containerHandle *netlink.Handle, container string) error {
	type piece struct {
		handle *netlink.Handle
		name   string
	}
	pieces := []piece{
		{hostHandle, naming.HostVeth(container)},
		{hostHandle, naming.TempPeerVeth(container)},
	}
	if containerHandle != nil {
		pieces = append(pieces,
			piece{containerHandle, naming.ContainerIface},
			piece{containerHandle, naming.TempPeerVeth(container)})
	}
	for _, p := range pieces {
		l, err := p.handle.LinkByName(p.name)
		if isLinkNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s of container %s: %w", p.name, container, err)
		}
		if err := p.handle.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("deleting %s of container %s: %w", p.name, container, err)
		}
	}
	return nil
}

// createPair creates the veth pair in the host namespace, the container end
// under a temporary name (the host namespace has its own eth0), then moves
// that end into the container namespace and renames it eth0 there.
func createPair(hostHandle, containerHandle *netlink.Handle, containerNs netns.NsHandle, link ContainerLink) (hostEnd, inner netlink.Link, err error) {
	hostName := naming.HostVeth(link.Container)
	tempName := naming.TempPeerVeth(link.Container)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostName
	attrs.MTU = link.MTU
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         tempName,
		PeerMTU:          uint32(link.MTU),
		PeerHardwareAddr: link.MAC,
	}
	if err := hostHandle.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("creating veth pair %s/%s for container %s: %w", hostName, tempName, link.Container, err)
	}
	undo := func(err error) (netlink.Link, netlink.Link, error) {
		return nil, nil, errors.Join(err, removeVeths(hostHandle, containerHandle, link.Container))
	}
	peer, err := hostHandle.LinkByName(tempName)
	if err != nil {
		return undo(fmt.Errorf("reading new veth end %s of container %s: %w", tempName, link.Container, err))
	}
	if err := hostHandle.LinkSetNsFd(peer, int(containerNs)); err != nil {
		return undo(fmt.Errorf("moving veth end %s into network namespace %s: %w", tempName, link.Netns, err))
	}
	moved, err := containerHandle.LinkByName(tempName)
	if err != nil {
		return undo(fmt.Errorf("reading veth end %s in network namespace %s: %w", tempName, link.Netns, err))
	}
	if err := containerHandle.LinkSetName(moved, naming.ContainerIface); err != nil {
		return undo(fmt.Errorf("renaming veth end %s to %s in network namespace %s: %w", tempName, naming.ContainerIface, link.Netns, err))
	}
	hostEnd, inner, err = findPair(hostHandle, containerHandle, link.Container)
	if err == nil && hostEnd == nil {
		err = fmt.Errorf("veth pair of container %s vanished right after creation", link.Container)
	}
	if err != nil {
		return undo(err)
	}
	return hostEnd, inner, nil
}

func ensureHostEnd(h *netlink.Handle, hostEnd, bridge netlink.Link, link ContainerLink) (bool, error) {
	name := hostEnd.Attrs().Name
	changed := false
	if hostEnd.Attrs().MTU != link.MTU {
		if err := h.LinkSetMTU(hostEnd, link.MTU); err != nil {
			return changed, fmt.Errorf("setting MTU %d on veth %s of container %s: %w", link.MTU, name, link.Container, err)
		}
		changed = true
	}
	if hostEnd.Attrs().MasterIndex != bridge.Attrs().Index {
		if err := h.LinkSetMasterByIndex(hostEnd, bridge.Attrs().Index); err != nil {
			return changed, fmt.Errorf("attaching veth %s of container %s to bridge %s: %w", name, link.Container, bridge.Attrs().Name, err)
		}
		changed = true
	}
	upChanged, err := ensureUp(h, hostEnd)
	changed = changed || upChanged
	if err != nil {
		return changed, fmt.Errorf("bringing veth %s of container %s up: %w", name, link.Container, err)
	}
	return changed, nil
}

func ensureInnerEnd(h *netlink.Handle, inner netlink.Link, link ContainerLink) (bool, error) {
	changed := false
	if !bytes.Equal(inner.Attrs().HardwareAddr, link.MAC) {
		// A veth takes a new MAC only while down; ensureUp below raises it.
		if err := h.LinkSetDown(inner); err != nil {
			return changed, fmt.Errorf("taking %s of container %s down to change its MAC: %w", naming.ContainerIface, link.Container, err)
		}
		if err := h.LinkSetHardwareAddr(inner, link.MAC); err != nil {
			return true, fmt.Errorf("setting MAC %s on %s of container %s: %w", link.MAC, naming.ContainerIface, link.Container, err)
		}
		changed = true
		inner.Attrs().Flags &^= net.FlagUp
	}
	if inner.Attrs().MTU != link.MTU {
		if err := h.LinkSetMTU(inner, link.MTU); err != nil {
			return changed, fmt.Errorf("setting MTU %d on %s of container %s: %w", link.MTU, naming.ContainerIface, link.Container, err)
		}
		changed = true
	}
	addrChanged, err := ensureAddr(h, inner, link.Addr, true)
	changed = changed || addrChanged
	if err != nil {
		return changed, fmt.Errorf("addressing %s of container %s: %w", naming.ContainerIface, link.Container, err)
	}
	upChanged, err := ensureUp(h, inner)
	changed = changed || upChanged
	if err != nil {
		return changed, fmt.Errorf("bringing %s of container %s up: %w", naming.ContainerIface, link.Container, err)
	}
	routeChanged, err := ensureDefaultRoute(h, inner, link.Gateway)
	changed = changed || routeChanged
	if err != nil {
		return changed, fmt.Errorf("setting the default route of container %s: %w", link.Container, err)
	}
	return changed, nil
}

// ensureDefaultRoute makes the main table's default route go via gateway on
// link, or removes it when gateway is zero.
func ensureDefaultRoute(h *netlink.Handle, link netlink.Link, gateway netip.Addr) (bool, error) {
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false, fmt.Errorf("listing routes: %w", err)
	}
	var defaults []netlink.Route
	for _, r := range routes {
		if r.Dst == nil || prefixOf(r.Dst).Bits() == 0 {
			defaults = append(defaults, r)
		}
	}
	if gateway.IsValid() && len(defaults) == 1 {
		gw, _ := netip.AddrFromSlice(defaults[0].Gw)
		if gw.Unmap() == gateway && defaults[0].LinkIndex == link.Attrs().Index {
			return false, nil
		}
	}
	changed := false
	for _, r := range defaults {
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return changed, fmt.Errorf("deleting default route via %s: %w", r.Gw, err)
		}
		changed = true
	}
	if !gateway.IsValid() {
		return changed, nil
	}
	route := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        net.IP(gateway.AsSlice()),
	}
	if err := h.RouteReplace(route); err != nil {
		return changed, fmt.Errorf("adding default route via %s: %w", gateway, err)
	}
	return true, nil
}

// DetachContainer removes the container's veth pair (both ends) and deletes
// its named network namespace. Absent pieces are not an error. netnsName may
// be empty to keep the namespace.
func DetachContainer(host netns.NsHandle, container, netnsName string) error {
	if container == "" {
		return errors.New("detaching a container: container name is empty")
	}
	hostHandle, err := netlink.NewHandleAt(host)
	if err != nil {
		return fmt.Errorf("opening netlink in the host namespace: %w", err)
	}
	defer hostHandle.Close()
	if err := removeVeths(hostHandle, nil, container); err != nil {
		return err
	}
	if netnsName == "" {
		return nil
	}
	if err := validateNetnsName(netnsName); err != nil {
		return fmt.Errorf("detaching container %s: %w", container, err)
	}
	path := filepath.Join(netnsRunDir, netnsName)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting network namespace %s of container %s: %w", path, container, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing network namespace %s of container %s: %w", path, container, err)
	}
	return nil
}

// HostVeths lists the names of the veths attached to the host's bridge:
// the host ends of the containers' links, for garbage collection. A missing
// bridge has none.
func HostVeths(host netns.NsHandle, cfg HostConfig) ([]string, error) {
	h, err := netlink.NewHandleAt(host)
	if err != nil {
		return nil, fmt.Errorf("opening netlink in the host namespace: %w", err)
	}
	defer h.Close()
	bridge, err := h.LinkByName(cfg.Bridge)
	if isLinkNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading bridge %s: %w", cfg.Bridge, err)
	}
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links of the host namespace: %w", err)
	}
	var names []string
	for _, l := range links {
		if l.Type() == "veth" && l.Attrs().MasterIndex == bridge.Attrs().Index {
			names = append(names, l.Attrs().Name)
		}
	}
	slices.Sort(names)
	return names, nil
}
