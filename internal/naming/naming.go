// Package naming derives every name and path weft gives to kernel objects and
// files from the cluster's name, so that `weft down` finds exactly one
// cluster's objects and two clusters never collide. It is pure.
//
// Cluster, host and service names are [a-z][a-z0-9-]* (see spec); a dot never
// appears in them, so "weft.<cluster>." is a prefix no other cluster shares.
package naming

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
)

// DefaultStateRoot is where weft keeps per-cluster state on a machine.
const DefaultStateRoot = "/var/lib/weft"

// NetnsPrefix is the prefix of every named network namespace of a cluster.
func NetnsPrefix(cluster string) string { return "weft." + cluster + "." }

// RouterNetns is the lab's VPC router namespace.
func RouterNetns(cluster string) string { return NetnsPrefix(cluster) + "router" }

// HostNetns is the namespace of one lab host.
func HostNetns(cluster, host string) string { return NetnsPrefix(cluster) + "h." + host }

// ContainerNetns is the namespace of one container on one host (it
// outlives the container's process so address and MAC survive restarts).
// The host is part of the name because in the lab every host's namespaces
// share one machine: a container moving between hosts must not meet its
// old namespace.
func ContainerNetns(cluster, host, container string) string {
	return NetnsPrefix(cluster) + "c." + host + "." + container
}

// ContainerName is the name of replica index (1-based) of a service.
func ContainerName(service string, index int) string {
	return fmt.Sprintf("%s-%d", service, index)
}

// HostVeth is the host-side name of a container's veth pair (<=15 bytes).
func HostVeth(container string) string { return "vw" + shortHash(container, 10) }

// TempPeerVeth is the temporary name of the container side before it is
// moved into the container's namespace and renamed eth0.
func TempPeerVeth(container string) string { return "vp" + shortHash(container, 10) }

// ContainerIface is the interface name inside every container.
const ContainerIface = "eth0"

// HostUnderlayIface is the underlay interface name inside every lab host.
const HostUnderlayIface = "eth0"

// VXLANDevice is the vxlan device name on every host.
func VXLANDevice(vni int) string { return fmt.Sprintf("vxlan%d", vni) }

// MACFromIP derives a container's MAC from its overlay IPv4 address
// (locally administered 02:42 prefix), so a pinned address keeps its MAC.
// For an address that is not IPv4 (one read from a bad store value) it
// returns nil, which the overlay refuses; use ContainerMAC where the cause
// must be reported.
func MACFromIP(ip netip.Addr) net.HardwareAddr {
	mac, _ := ContainerMAC(ip)
	return mac
}

// ContainerMAC is MACFromIP with an error naming an address that is not
// IPv4.
func ContainerMAC(ip netip.Addr) (net.HardwareAddr, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("address %q is not IPv4: container MACs are derived from IPv4 overlay addresses only", ip)
	}
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}, nil
}

// StateDir is the directory of all of one cluster's state on this machine.
func StateDir(root, cluster string) string { return filepath.Join(root, cluster) }

// HostStateDir is one host's state: agent socket, logs, etcd data, containers.
func HostStateDir(root, cluster, host string) string {
	return filepath.Join(StateDir(root, cluster), "hosts", host)
}

// AgentSocket is the unix socket the host's agent serves its API on.
func AgentSocket(root, cluster, host string) string {
	return filepath.Join(HostStateDir(root, cluster, host), "agent.sock")
}

// ContainerStateDir holds a container's record and its output log.
func ContainerStateDir(root, cluster, host, container string) string {
	return filepath.Join(HostStateDir(root, cluster, host), "containers", container)
}

// ImageDir holds one host's images: each unpacked once, shared by every
// container of the host that runs it (internal/image).
func ImageDir(root, cluster, host string) string {
	return filepath.Join(HostStateDir(root, cluster, host), "images")
}

// VolumeDir is a container's named volume; it outlives the container.
func VolumeDir(root, cluster, container, volume string) string {
	return filepath.Join(StateDir(root, cluster), "volumes", container, volume)
}

// CgroupControllers returns the cgroup v1 hierarchies weft puts its processes
// in (pids to find them, freezer to crash a host) or once did (memory), so
// that `weft down` removes them all.
func CgroupControllers() []string { return []string{"pids", "freezer", "memory"} }

// CgroupRelPath is the path of a cluster's cgroup below a controller root;
// parts (host, container) nest below it.
func CgroupRelPath(cluster string, parts ...string) string {
	return filepath.Join(append([]string{"weft." + cluster}, parts...)...)
}

// StoreRoot is the etcd key prefix of a cluster.
func StoreRoot(cluster string) string { return "/weft/" + cluster + "/" }

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return strings.ToLower(hex.EncodeToString(sum[:]))[:n]
}

// HostSystemDirs are the host's directories shown read-only in every
// container (runtime's root of a container without image): nothing secret
// may live below them, e.g. provider ssh's install root.
func HostSystemDirs() []string {
	return []string{"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt"}
}
