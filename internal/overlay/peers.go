package overlay

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Peer is a container on another host, as this host's vxlan device must know it.
type Peer struct {
	IP   netip.Addr
	MAC  net.HardwareAddr
	Host netip.Addr // remote host's underlay address
}

// SyncResult counts what SyncPeers changed, one per peer: Added when the
// kernel had no neighbor entry for the peer's IP, Replaced when it had one but
// some entry of the peer differed, Deleted for peers (or orphan entries)
// that are no longer wanted.
type SyncResult struct{ Added, Replaced, Deleted int }

// Changed reports whether the sync wrote anything.
func (r SyncResult) Changed() bool { return r.Added+r.Replaced+r.Deleted > 0 }

// peerState is the part of the kernel SyncPeers manages, per vxlan device:
//   - neighbors: permanent IPv4 neighbor entries (IP -> MAC); they let the
//     device answer ARP itself (proxy) instead of flooding the request;
//   - remotes: the device's own FDB entries (MAC -> remote host underlay IP);
//   - bridgeStatic: static entries of the bridge putting the MAC on the vxlan
//     port, so the bridge never floods frames for a remote container.
type peerState struct {
	neighbors    map[netip.Addr]string       // IP -> MAC
	remotes      map[string][]netip.Addr     // MAC -> remote hosts
	bridgeStatic map[string]net.HardwareAddr // MAC -> MAC
}

// peerPlan is the list of writes that turn a peerState into the desired peers.
// Writes are ordered so that a peer is forwardable (FDB) before its ARP is
// answered (neighbor), and its neighbor entry goes before its FDB entries.
type peerPlan struct {
	setRemotes   []Peer             // NeighSet of a self FDB entry MAC -> Host
	dropRemotes  []Peer             // remotes deleted first where a MAC had several (replace keeps only one)
	setBridge    []net.HardwareAddr // NeighSet of a static bridge FDB entry
	setNeighbors []Peer             // NeighSet of a permanent neighbor IP -> MAC
	delNeighbors []netip.Addr
	delRemotes   []Peer // MAC + Host of each stale self FDB entry
	delBridge    []net.HardwareAddr
	result       SyncResult
}

func (p peerPlan) empty() bool {
	return len(p.setRemotes)+len(p.dropRemotes)+len(p.setBridge)+len(p.setNeighbors)+
		len(p.delNeighbors)+len(p.delRemotes)+len(p.delBridge) == 0
}

// validatePeers rejects lists the kernel could not represent: one IP with two
// MACs, one MAC on two hosts, a peer on this very host (local containers are
// reached through the bridge; an entry would steal their traffic).
func validatePeers(peers []Peer, local netip.Addr) error {
	var problems []error
	macOfIP := map[netip.Addr]string{}
	hostOfMAC := map[string]netip.Addr{}
	for i, p := range peers {
		switch {
		case !p.IP.IsValid() || !p.IP.Is4():
			problems = append(problems, fmt.Errorf("peer %d: IP %v is not an IPv4 address", i, p.IP))
			continue
		case len(p.MAC) != 6 || isZeroMAC(p.MAC) || p.MAC[0]&1 != 0:
			problems = append(problems, fmt.Errorf("peer %s: MAC %q is not a unicast Ethernet address: derive it with naming.MACFromIP", p.IP, p.MAC))
			continue
		case !p.Host.IsValid() || !p.Host.Is4() || p.Host.IsUnspecified():
			problems = append(problems, fmt.Errorf("peer %s: host address %v is not an IPv4 underlay address", p.IP, p.Host))
			continue
		case p.Host == local:
			problems = append(problems, fmt.Errorf("peer %s is on this host (%s): leave local containers out of the peer list", p.IP, local))
			continue
		}
		mac := p.MAC.String()
		if prev, ok := macOfIP[p.IP]; ok {
			problems = append(problems, fmt.Errorf("peer %s is listed twice (MACs %s and %s): list each container once", p.IP, prev, mac))
		}
		macOfIP[p.IP] = mac
		if prev, ok := hostOfMAC[mac]; ok && prev != p.Host {
			problems = append(problems, fmt.Errorf("MAC %s is listed on two hosts (%s and %s): each container lives on one host", mac, prev, p.Host))
		}
		hostOfMAC[mac] = p.Host
	}
	return errors.Join(problems...)
}

// planPeers computes the writes that make have match peers. It is pure;
// peers must have passed validatePeers.
func planPeers(have peerState, peers []Peer) peerPlan {
	var plan peerPlan
	wantIPs := map[netip.Addr]bool{}
	wantMACs := map[string]bool{}
	remoteSet := map[string]bool{}
	bridgeSet := map[string]bool{}

	for _, p := range peers {
		mac := p.MAC.String()
		wantIPs[p.IP] = true
		wantMACs[mac] = true

		remotes := have.remotes[mac]
		remoteOK := len(remotes) == 1 && remotes[0] == p.Host
		if !remoteOK && !remoteSet[mac] {
			if len(remotes) > 1 {
				for _, host := range remotes {
					plan.dropRemotes = append(plan.dropRemotes, Peer{MAC: p.MAC, Host: host})
				}
			}
			plan.setRemotes = append(plan.setRemotes, Peer{MAC: p.MAC, Host: p.Host})
			remoteSet[mac] = true
		}
		_, bridgeOK := have.bridgeStatic[mac]
		if !bridgeOK && !bridgeSet[mac] {
			plan.setBridge = append(plan.setBridge, p.MAC)
			bridgeSet[mac] = true
		}
		haveMAC, haveNeighbor := have.neighbors[p.IP]
		neighborOK := haveNeighbor && haveMAC == mac
		if !neighborOK {
			plan.setNeighbors = append(plan.setNeighbors, p)
		}

		switch {
		case !haveNeighbor:
			plan.result.Added++
		case !neighborOK || !remoteOK || !bridgeOK:
			plan.result.Replaced++
		}
	}

	// A stale MAC that a current neighbor entry points to is accounted for by
	// that neighbor (deleted or replaced); only orphans count on their own.
	counted := map[string]bool{}
	for _, ip := range sortedIPs(have.neighbors) {
		counted[have.neighbors[ip]] = true
		if !wantIPs[ip] {
			plan.delNeighbors = append(plan.delNeighbors, ip)
			plan.result.Deleted++
		}
	}
	for _, mac := range sortedMACs(have.remotes) {
		if wantMACs[mac] {
			continue
		}
		hw, _ := net.ParseMAC(mac)
		for _, host := range have.remotes[mac] {
			plan.delRemotes = append(plan.delRemotes, Peer{MAC: hw, Host: host})
		}
		if !counted[mac] {
			counted[mac] = true
			plan.result.Deleted++
		}
	}
	for _, mac := range sortedMACs(have.bridgeStatic) {
		if wantMACs[mac] {
			continue
		}
		plan.delBridge = append(plan.delBridge, have.bridgeStatic[mac])
		if !counted[mac] {
			counted[mac] = true
			plan.result.Deleted++
		}
	}
	return plan
}

// peersOf lists a peerState as peers: each neighbor with the remote host of
// its MAC (zero when the FDB lacks it), then FDB entries no neighbor points to.
func peersOf(have peerState) []Peer {
	var peers []Peer
	referenced := map[string]bool{}
	for _, ip := range sortedIPs(have.neighbors) {
		mac := have.neighbors[ip]
		referenced[mac] = true
		hw, _ := net.ParseMAC(mac)
		p := Peer{IP: ip, MAC: hw}
		if hosts := have.remotes[mac]; len(hosts) > 0 {
			p.Host = hosts[0]
		}
		peers = append(peers, p)
	}
	for _, mac := range sortedMACs(have.remotes) {
		if referenced[mac] {
			continue
		}
		hw, _ := net.ParseMAC(mac)
		for _, host := range have.remotes[mac] {
			peers = append(peers, Peer{MAC: hw, Host: host})
		}
	}
	return peers
}

// SyncPeers makes the vxlan device's permanent neighbor entries, its FDB
// entries and the bridge's static entries on the vxlan port exactly peers.
// Entries of other kinds (the kernel's own permanent entries, dynamically
// learned ones, IPv6 neighbors) are left alone. EnsureHost must have run.
func SyncPeers(host netns.NsHandle, cfg HostConfig, peers []Peer) (SyncResult, error) {
	if err := validatePeers(peers, cfg.LocalAddr); err != nil {
		return SyncResult{}, err
	}
	h, err := netlink.NewHandleAt(host)
	if err != nil {
		return SyncResult{}, fmt.Errorf("opening netlink in the host namespace: %w", err)
	}
	defer h.Close()
	vxlan, bridgeIndex, err := hostDevices(h, cfg)
	if err != nil {
		return SyncResult{}, err
	}
	have, err := readPeerState(h, vxlan.Attrs().Index, bridgeIndex)
	if err != nil {
		return SyncResult{}, fmt.Errorf("reading entries of vxlan device %s: %w", vxlan.Attrs().Name, err)
	}
	plan := planPeers(have, peers)
	if plan.empty() {
		return SyncResult{}, nil
	}
	if err := applyPeerPlan(h, vxlan.Attrs().Index, bridgeIndex, plan); err != nil {
		return SyncResult{}, fmt.Errorf("programming peers on vxlan device %s: %w", vxlan.Attrs().Name, err)
	}
	return plan.result, nil
}

// Entries lists what SyncPeers manages, as the kernel has it now: one Peer per
// neighbor entry (Host zero when its FDB entry is missing), then one per FDB
// entry that no neighbor points to (IP zero). Sorted by IP.
func Entries(host netns.NsHandle, cfg HostConfig) ([]Peer, error) {
	h, err := netlink.NewHandleAt(host)
	if err != nil {
		return nil, fmt.Errorf("opening netlink in the host namespace: %w", err)
	}
	defer h.Close()
	vxlan, bridgeIndex, err := hostDevices(h, cfg)
	if err != nil {
		return nil, err
	}
	have, err := readPeerState(h, vxlan.Attrs().Index, bridgeIndex)
	if err != nil {
		return nil, fmt.Errorf("reading entries of vxlan device %s: %w", vxlan.Attrs().Name, err)
	}
	return peersOf(have), nil
}

func hostDevices(h *netlink.Handle, cfg HostConfig) (vxlan netlink.Link, bridgeIndex int, err error) {
	vxlan, err = h.LinkByName(cfg.VXLANDevice())
	if err != nil {
		return nil, 0, fmt.Errorf("finding vxlan device %s in the host namespace: %w (run EnsureHost first)", cfg.VXLANDevice(), err)
	}
	bridge, err := h.LinkByName(cfg.Bridge)
	if err != nil {
		return nil, 0, fmt.Errorf("finding bridge %s in the host namespace: %w (run EnsureHost first)", cfg.Bridge, err)
	}
	return vxlan, bridge.Attrs().Index, nil
}

func readPeerState(h *netlink.Handle, vxlanIndex, bridgeIndex int) (peerState, error) {
	have := peerState{
		neighbors:    map[netip.Addr]string{},
		remotes:      map[string][]netip.Addr{},
		bridgeStatic: map[string]net.HardwareAddr{},
	}
	neighbors, err := h.NeighList(vxlanIndex, unix.AF_INET)
	if err != nil {
		return have, fmt.Errorf("listing neighbor entries: %w", err)
	}
	for _, n := range neighbors {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.State&unix.NUD_PERMANENT == 0 || len(n.HardwareAddr) != 6 {
			continue
		}
		have.neighbors[ip.Unmap()] = n.HardwareAddr.String()
	}

	fdb, err := h.NeighList(vxlanIndex, unix.AF_BRIDGE)
	if err != nil {
		return have, fmt.Errorf("listing FDB entries: %w", err)
	}
	for _, e := range fdb {
		if !isManagedMAC(e.HardwareAddr) || e.Vlan != 0 {
			continue
		}
		mac := e.HardwareAddr.String()
		switch {
		case e.Flags&unix.NTF_SELF != 0:
			dst, ok := netip.AddrFromSlice(e.IP)
			if !ok || !dst.Unmap().Is4() || dst.IsUnspecified() {
				continue
			}
			have.remotes[mac] = append(have.remotes[mac], dst.Unmap())
		case e.MasterIndex == bridgeIndex:
			// The bridge's entries come without NTF_MASTER in dumps; they
			// are told by NDA_MASTER. Permanent ones are the bridge's own
			// local addresses and learned ones age out by themselves: only
			// static is weft's.
			if e.State&unix.NUD_NOARP == 0 || e.State&unix.NUD_PERMANENT != 0 {
				continue
			}
			have.bridgeStatic[mac] = slices.Clone(e.HardwareAddr)
		}
	}
	return have, nil
}

// isManagedMAC reports whether weft may own an FDB entry for mac: unicast and
// not all-zero (the all-zero default entry is EnsureHost's business).
func isManagedMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && !isZeroMAC(mac) && mac[0]&1 == 0
}

func applyPeerPlan(h *netlink.Handle, vxlanIndex, bridgeIndex int, plan peerPlan) error {
	for _, p := range plan.dropRemotes {
		if err := h.NeighDel(remoteEntry(vxlanIndex, p)); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("deleting FDB entry %s with several remotes: %w", p.MAC, err)
		}
	}
	for _, p := range plan.setRemotes {
		if err := h.NeighSet(remoteEntry(vxlanIndex, p)); err != nil {
			return fmt.Errorf("setting FDB entry %s -> %s: %w", p.MAC, p.Host, err)
		}
	}
	for _, mac := range plan.setBridge {
		if err := h.NeighSet(bridgeEntry(vxlanIndex, bridgeIndex, mac)); err != nil {
			return fmt.Errorf("setting bridge FDB entry %s on the vxlan port: %w", mac, err)
		}
	}
	for _, p := range plan.setNeighbors {
		if err := h.NeighSet(neighborEntry(vxlanIndex, p.IP, p.MAC)); err != nil {
			return fmt.Errorf("setting neighbor entry %s -> %s: %w", p.IP, p.MAC, err)
		}
	}
	for _, ip := range plan.delNeighbors {
		if err := h.NeighDel(neighborEntry(vxlanIndex, ip, nil)); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("deleting neighbor entry %s: %w", ip, err)
		}
	}
	for _, p := range plan.delRemotes {
		if err := h.NeighDel(remoteEntry(vxlanIndex, p)); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("deleting FDB entry %s -> %s: %w", p.MAC, p.Host, err)
		}
	}
	for _, mac := range plan.delBridge {
		if err := h.NeighDel(bridgeEntry(vxlanIndex, bridgeIndex, mac)); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("deleting bridge FDB entry %s: %w", mac, err)
		}
	}
	return nil
}

func remoteEntry(vxlanIndex int, p Peer) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    vxlanIndex,
		Family:       unix.AF_BRIDGE,
		Flags:        unix.NTF_SELF,
		State:        unix.NUD_PERMANENT,
		IP:           net.IP(p.Host.AsSlice()),
		HardwareAddr: p.MAC,
	}
}

// bridgeEntry is `bridge fdb replace MAC dev vxlan master static`: static is
// NUD_NOARP, because a permanent master entry would mean "this host's own
// address" and the bridge would deliver the frames locally.
func bridgeEntry(vxlanIndex, bridgeIndex int, mac net.HardwareAddr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    vxlanIndex,
		MasterIndex:  bridgeIndex,
		Family:       unix.AF_BRIDGE,
		Flags:        unix.NTF_MASTER,
		State:        unix.NUD_NOARP,
		HardwareAddr: mac,
	}
}

func neighborEntry(vxlanIndex int, ip netip.Addr, mac net.HardwareAddr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    vxlanIndex,
		Family:       unix.AF_INET,
		State:        unix.NUD_PERMANENT,
		IP:           net.IP(ip.AsSlice()),
		HardwareAddr: mac,
	}
}

func sortedIPs[V any](m map[netip.Addr]V) []netip.Addr {
	return slices.SortedFunc(maps.Keys(m), netip.Addr.Compare)
}

func sortedMACs[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
