// Package overlay owns every netlink call of weft's VXLAN overlay: per host
// one bridge and one VXLAN device, the static neighbor and FDB entries
// towards remote containers, and each container's veth.
//
// Like flannel's vxlan backend, every function makes the kernel match a
// description and is safe to repeat: it reads first and writes only what
// differs, so re-applying an unchanged cluster recreates nothing. Learning is
// off and ARP for remote containers is answered by the local VXLAN device from
// its permanent neighbor entries, so no broadcast or unknown-unicast frame
// ever crosses the underlay.
//
// Every function takes explicit namespace handles and works from any thread:
// netlink sockets are opened inside the target namespace with
// netlink.NewHandleAt.
package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// minIPv4MTU is the smallest MTU IPv4 allows on a link.
const minIPv4MTU = 68

// HostConfig describes one host's overlay devices.
type HostConfig struct {
	VNI, Port, MTU int          // MTU = underlay MTU - 50, set on vxlan, bridge and container links
	Bridge         string       // bridge name, e.g. "br-vxlan"
	BridgeAddr     netip.Prefix // the host's overlay address with the overlay prefix length, e.g. 10.10.255.1/16
	LocalAddr      netip.Addr   // the host's underlay address (vxlan local)
	UnderlayIface  string       // "eth0" (vxlan dev)
}

// VXLANDevice is the name of the host's vxlan device for this config.
func (cfg HostConfig) VXLANDevice() string { return naming.VXLANDevice(cfg.VNI) }

func (cfg HostConfig) validate() error {
	var problems []error
	if !spec.VNIInRange(cfg.VNI) {
		problems = append(problems, fmt.Errorf("overlay VNI %d is out of range: use %d..%d", cfg.VNI, spec.MinVNI, spec.MaxVNI))
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		problems = append(problems, fmt.Errorf("overlay UDP port %d is out of range: use 1..65535 (4789 is the standard)", cfg.Port))
	}
	if cfg.MTU < minIPv4MTU {
		problems = append(problems, fmt.Errorf("overlay MTU %d is below the IPv4 minimum %d: use the underlay MTU - %d", cfg.MTU, minIPv4MTU, spec.VXLANOverhead))
	}
	if cfg.Bridge == "" || len(cfg.Bridge) >= unix.IFNAMSIZ {
		problems = append(problems, fmt.Errorf("bridge name %q is invalid: use 1..%d bytes", cfg.Bridge, unix.IFNAMSIZ-1))
	}
	if !cfg.BridgeAddr.IsValid() || !cfg.BridgeAddr.Addr().Is4() {
		problems = append(problems, fmt.Errorf("bridge address %v is invalid: use the host's overlay IPv4 address with the overlay prefix length, e.g. 10.10.255.1/16", cfg.BridgeAddr))
	}
	if !cfg.LocalAddr.IsValid() || !cfg.LocalAddr.Is4() {
		problems = append(problems, fmt.Errorf("local underlay address %v is invalid: use the host's underlay IPv4 address", cfg.LocalAddr))
	}
	if cfg.UnderlayIface == "" {
		problems = append(problems, errors.New("underlay interface is empty: name the host's underlay device, e.g. eth0"))
	}
	return errors.Join(problems...)
}

// EnsureHost makes the host's bridge and vxlan device match cfg and reports
// whether it had to change anything. A device of the wrong kind under one of
// the names is an error, never deleted: it is not weft's.
func EnsureHost(host netns.NsHandle, cfg HostConfig) (changed bool, err error) {
	if err := cfg.validate(); err != nil {
		return false, err
	}
	h, err := netlink.NewHandleAt(host)
	if err != nil {
		return false, fmt.Errorf("opening netlink in the host namespace: %w", err)
	}
	defer h.Close()

	underlay, err := h.LinkByName(cfg.UnderlayIface)
	if err != nil {
		return false, fmt.Errorf("finding underlay interface %s in the host namespace: %w (set the host's underlay interface to an existing device)", cfg.UnderlayIface, err)
	}
	if maxMTU := underlay.Attrs().MTU - spec.VXLANOverhead; cfg.MTU > maxMTU {
		return false, fmt.Errorf("overlay MTU %d does not fit underlay %s (MTU %d): use at most %d (underlay MTU - %d)",
			cfg.MTU, cfg.UnderlayIface, underlay.Attrs().MTU, maxMTU, spec.VXLANOverhead)
	}

	bridge, bridgeChanged, err := ensureBridge(h, cfg)
	if err != nil {
		return bridgeChanged, err
	}
	vxlanChanged, err := ensureVXLAN(h, cfg, underlay, bridge)
	return bridgeChanged || vxlanChanged, err
}

func ensureBridge(h *netlink.Handle, cfg HostConfig) (netlink.Link, bool, error) {
	mac := naming.MACFromIP(cfg.BridgeAddr.Addr())
	changed := false
	link, err := h.LinkByName(cfg.Bridge)
	if isLinkNotFound(err) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = cfg.Bridge
		attrs.HardwareAddr = mac
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return nil, false, fmt.Errorf("creating bridge %s: %w", cfg.Bridge, err)
		}
		changed = true
		link, err = h.LinkByName(cfg.Bridge)
	}
	if err != nil {
		return nil, changed, fmt.Errorf("reading bridge %s: %w", cfg.Bridge, err)
	}
	if link.Type() != "bridge" {
		return nil, changed, fmt.Errorf("%s in the host namespace is a %s, not a bridge: delete it or choose another bridge name", cfg.Bridge, link.Type())
	}

	if !bytes.Equal(link.Attrs().HardwareAddr, mac) {
		if err := h.LinkSetHardwareAddr(link, mac); err != nil {
			return nil, changed, fmt.Errorf("setting MAC %s on bridge %s: %w", mac, cfg.Bridge, err)
		}
		changed = true
	}
	// Setting the MTU explicitly (rather than at creation) pins it: the
	// kernel then no longer lowers it to the smallest port's MTU.
	if link.Attrs().MTU != cfg.MTU {
		if err := h.LinkSetMTU(link, cfg.MTU); err != nil {
			return nil, changed, fmt.Errorf("setting MTU %d on bridge %s: %w", cfg.MTU, cfg.Bridge, err)
		}
		changed = true
	}
	addrChanged, err := ensureAddr(h, link, cfg.BridgeAddr, false)
	changed = changed || addrChanged
	if err != nil {
		return nil, changed, fmt.Errorf("addressing bridge %s: %w", cfg.Bridge, err)
	}
	upChanged, err := ensureUp(h, link)
	changed = changed || upChanged
	if err != nil {
		return nil, changed, fmt.Errorf("bringing bridge %s up: %w", cfg.Bridge, err)
	}
	return link, changed, nil
}

func ensureVXLAN(h *netlink.Handle, cfg HostConfig, underlay, bridge netlink.Link) (bool, error) {
	name := cfg.VXLANDevice()
	changed := false

	// A VNI change renames the device, so the old one is found by being
	// weft's vxlan port on this bridge rather than by name.
	links, err := h.LinkList()
	if err != nil {
		return false, fmt.Errorf("listing links of the host namespace: %w", err)
	}
	for _, l := range links {
		if l.Type() == "vxlan" && l.Attrs().MasterIndex == bridge.Attrs().Index && l.Attrs().Name != name {
			if err := h.LinkDel(l); err != nil {
				return changed, fmt.Errorf("deleting old vxlan device %s from bridge %s: %w", l.Attrs().Name, cfg.Bridge, err)
			}
			changed = true
		}
	}

	link, err := h.LinkByName(name)
	switch {
	case isLinkNotFound(err):
		link = nil
	case err != nil:
		return changed, fmt.Errorf("reading vxlan device %s: %w", name, err)
	default:
		existing, ok := link.(*netlink.Vxlan)
		if !ok {
			return changed, fmt.Errorf("%s in the host namespace is a %s, not a vxlan device: delete it", name, link.Type())
		}
		// VNI, port, local address, underlay device and the flags are fixed
		// at creation (the kernel refuses to change most of them), so a
		// device that differs is replaced.
		if !vxlanMatches(existing, cfg, underlay.Attrs().Index) {
			if err := h.LinkDel(existing); err != nil {
				return changed, fmt.Errorf("deleting vxlan device %s to recreate it with the configured settings: %w", name, err)
			}
			changed = true
			link = nil
		}
	}
	if link == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.MTU = cfg.MTU
		desired := &netlink.Vxlan{
			LinkAttrs:    attrs,
			VxlanId:      cfg.VNI,
			VtepDevIndex: underlay.Attrs().Index,
			SrcAddr:      net.IP(cfg.LocalAddr.AsSlice()),
			Port:         cfg.Port,
			Learning:     false,
			Proxy:        true,
			L2miss:       false,
			L3miss:       false,
		}
		if err := h.LinkAdd(desired); err != nil {
			return changed, fmt.Errorf("creating vxlan device %s (VNI %d, port %d, local %s, dev %s): %w",
				name, cfg.VNI, cfg.Port, cfg.LocalAddr, cfg.UnderlayIface, err)
		}
		changed = true
		if link, err = h.LinkByName(name); err != nil {
			return changed, fmt.Errorf("reading vxlan device %s after creating it: %w", name, err)
		}
	}

	if link.Attrs().MTU != cfg.MTU {
		if err := h.LinkSetMTU(link, cfg.MTU); err != nil {
			return changed, fmt.Errorf("setting MTU %d on vxlan device %s: %w", cfg.MTU, name, err)
		}
		changed = true
	}
	if link.Attrs().MasterIndex != bridge.Attrs().Index {
		if err := h.LinkSetMasterByIndex(link, bridge.Attrs().Index); err != nil {
			return changed, fmt.Errorf("attaching vxlan device %s to bridge %s: %w", name, cfg.Bridge, err)
		}
		changed = true
	}
	// The bridge never learns a MAC from the vxlan port: every remote
	// container has a static entry (SyncPeers), and a frame that arrives
	// with a local container's MAC (a stale copy on a host that came back,
	// or a forged one) must not move that MAC's entry onto the VXLAN, which
	// would cut the local container off until the entry aged out.
	pi, err := h.LinkGetProtinfo(link)
	if err != nil {
		return changed, fmt.Errorf("reading the bridge port flags of vxlan device %s: %w", name, err)
	}
	if pi.Learning {
		if err := h.LinkSetLearning(link, false); err != nil {
			return changed, fmt.Errorf("turning bridge learning off on vxlan device %s: %w", name, err)
		}
		changed = true
	}
	upChanged, err := ensureUp(h, link)
	changed = changed || upChanged
	if err != nil {
		return changed, fmt.Errorf("bringing vxlan device %s up: %w", name, err)
	}

	// An all-zero FDB entry would send every unknown or broadcast frame to
	// its destination: exactly the flooding weft must never do.
	fdb, err := h.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return changed, fmt.Errorf("listing FDB of vxlan device %s: %w", name, err)
	}
	for _, entry := range fdb {
		if entry.Flags&unix.NTF_SELF == 0 || !isZeroMAC(entry.HardwareAddr) {
			continue
		}
		if err := h.NeighDel(&entry); err != nil {
			return changed, fmt.Errorf("deleting default FDB entry towards %s on vxlan device %s: %w", entry.IP, name, err)
		}
		changed = true
	}
	return changed, nil
}

func vxlanMatches(v *netlink.Vxlan, cfg HostConfig, underlayIndex int) bool {
	local, _ := netip.AddrFromSlice(v.SrcAddr)
	return v.VxlanId == cfg.VNI &&
		v.Port == cfg.Port &&
		local.Unmap() == cfg.LocalAddr &&
		v.VtepDevIndex == underlayIndex &&
		len(v.Group) == 0 &&
		!v.Learning && v.Proxy && !v.L2miss && !v.L3miss &&
		!v.FlowBased
}

// ensureAddr makes want an IPv4 address of the link. The same IP with
// another prefix length is always replaced; other addresses are removed only
// when exclusive (a container's eth0 is weft's alone, while the host bridge
// may carry addresses other parts of the system put there).
func ensureAddr(h *netlink.Handle, link netlink.Link, want netip.Prefix, exclusive bool) (bool, error) {
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return false, fmt.Errorf("listing addresses: %w", err)
	}
	changed, present := false, false
	for _, a := range addrs {
		have := prefixOf(a.IPNet)
		if have == want {
			present = true
			continue
		}
		if !exclusive && have.Addr() != want.Addr() {
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			return changed, fmt.Errorf("removing address %s: %w", a.IPNet, err)
		}
		changed = true
	}
	if !present {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(want.Addr().AsSlice()), Mask: net.CIDRMask(want.Bits(), 32)}}
		if err := h.AddrAdd(link, addr); err != nil {
			return changed, fmt.Errorf("adding address %s: %w", want, err)
		}
		changed = true
	}
	return changed, nil
}

func ensureUp(h *netlink.Handle, link netlink.Link) (bool, error) {
	if link.Attrs().Flags&net.FlagUp != 0 {
		return false, nil
	}
	if err := h.LinkSetUp(link); err != nil {
		return false, err
	}
	return true, nil
}

func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), ones)
}

func isLinkNotFound(err error) bool {
	var notFound netlink.LinkNotFoundError
	return errors.As(err, &notFound)
}

func isZeroMAC(mac net.HardwareAddr) bool {
	for _, b := range mac {
		if b != 0 {
			return false
		}
	}
	return len(mac) > 0
}
