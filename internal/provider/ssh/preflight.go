package ssh

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// How the agent is kept running on a server.
const (
	initSystemd    = "systemd"    // a unit with Restart=always
	initSupervisor = "supervisor" // weft host-supervise, started by weft host-start
)

// preflightTimeout bounds the check of one server.
const preflightTimeout = 30 * time.Second

// preflight is what the check found on one server.
type preflight struct {
	Missing []string // each: what is missing and how to get it
	Init    string
	Iface   string // the interface holding the host's address
	MTU     int    // its MTU
}

// kernelModules are what the agent needs of the kernel, each with a symbol
// it has when built in.
var kernelModules = []struct{ mod, symbol, what string }{
	{"vxlan", "vxlan_xmit", "VXLAN support (kernel module vxlan, CONFIG_VXLAN)"},
	{"bridge", "br_dev_xmit", "bridge support (kernel module bridge, CONFIG_BRIDGE)"},
	{"veth", "veth_xmit", "veth support (kernel module veth, CONFIG_VETH)"},
	{"nf_tables", "nft_register_chain_type", "nftables (kernel module nf_tables, CONFIG_NF_TABLES)"},
}

func moduleNames() []string {
	names := make([]string, len(kernelModules))
	for i, m := range kernelModules {
		names[i] = m.mod
	}
	return names
}

// preflightScript checks a server without changing it (modprobe loads a
// module the kernel has, as the agent's first netlink call would). It
// prints "missing: ..." per problem, then "init: ...", "iface: NAME MTU".
func preflightScript(c *spec.Cluster, h spec.Host) string {
	l := layoutOf(h)
	vxlanDev := naming.VXLANDevice(c.Overlay.VNI)
	var b strings.Builder
	b.WriteString("PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH\n")
	b.WriteString("miss() { echo \"missing: $*\"; }\n")
	b.WriteString("[ \"$(id -u)\" = 0 ] || miss \"root: weft runs as root on the server; set ssh.user to root\"\n")
	for _, tool := range []string{"ip", "sha256sum", "awk"} {
		fmt.Fprintf(&b, "command -v %s >/dev/null 2>&1 || miss \"the %s command: install it (iproute2, coreutils, awk)\"\n", tool, tool)
	}
	// A module is there when loaded (/sys/module), built in (its symbol in
	// /proc/kallsyms: built-ins without parameters have no /sys/module
	// entry), or loadable.
	for _, m := range kernelModules {
		fmt.Fprintf(&b, "[ -d /sys/module/%s ] || grep -qw %s /proc/kallsyms 2>/dev/null || modprobe %s 2>/dev/null || miss %s\n",
			m.mod, m.symbol, m.mod, shellQuote(m.what+": use a kernel that has it"))
	}
	for _, ctrl := range append(naming.CgroupControllers(), "cpu") {
		fmt.Fprintf(&b, "[ -d /sys/fs/cgroup/%s ] || miss %s\n", ctrl,
			shellQuote(fmt.Sprintf("the cgroup v1 hierarchy %s at /sys/fs/cgroup/%s: weft needs cgroup v1 (boot with systemd.unified_cgroup_hierarchy=0, or mount it)", ctrl, ctrl)))
	}
	// The VXLAN port: free, or held by this cluster's own device (a
	// second up). /proc/net/udp shows this network namespace's sockets.
	fmt.Fprintf(&b, "if awk -v p=:%04X 'FNR>1 && toupper(substr($2, length($2)-4)) == p {f=1} END {exit !f}' /proc/net/udp /proc/net/udp6 2>/dev/null && ! ip -o link show %s >/dev/null 2>&1; then miss %s; fi\n",
		c.Overlay.Port, vxlanDev, shellQuote(fmt.Sprintf("UDP port %d (overlay.port) is in use by something else: free it, or pick another overlay.port", c.Overlay.Port)))
	fmt.Fprintf(&b, "iface=$(ip -o -4 addr show | awk -v a=%s '{split($4, x, \"/\"); if (x[1] == a) {print $2; exit}}')\n", h.Address)
	fmt.Fprintf(&b, "if [ -z \"$iface\" ]; then miss %s; else mtu=$(ip -o link show dev \"$iface\" | awk '{for (i = 1; i < NF; i++) if ($i == \"mtu\") print $(i+1)}'); echo \"iface: $iface $mtu\"; fi\n",
		shellQuote(fmt.Sprintf("the address %s on an interface: the file gives this host the address %s, which no interface of the server holds; write the server's own underlay address", h.Address, h.Address)))
	fmt.Fprintf(&b, "if [ -e %s ] && [ \"$(cat %s 2>/dev/null)\" != %s ]; then miss %s; fi\n", l.root, l.marker(), c.Name,
		shellQuote(fmt.Sprintf("install root %s exists and is not cluster %s's (weft down removes it whole): pick another install_root, or remove it", l.root, c.Name)))
	b.WriteString("if [ \"$(cat /proc/1/comm 2>/dev/null)\" = systemd ] && [ -d /run/systemd/system ]; then echo init: " + initSystemd + "; else echo init: " + initSupervisor + "; fi\n")
	return b.String()
}

// parsePreflight reads the script's output; mtuWant is the file's
// network.mtu, which the interface must carry.
func parsePreflight(out string, mtuWant int) preflight {
	var p preflight
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		key, val, _ := strings.Cut(line, ": ")
		switch key {
		case "missing":
			p.Missing = append(p.Missing, val)
		case "init":
			p.Init = val
		case "iface":
			name, mtu, _ := strings.Cut(val, " ")
			p.Iface = name
			p.MTU, _ = strconv.Atoi(mtu)
		}
	}
	if p.Init == "" {
		p.Missing = append(p.Missing, "a POSIX shell that runs weft's check: log in with a shell (the check printed "+strconv.Quote(strings.TrimSpace(out))+")")
	}
	if p.Iface != "" && p.MTU < mtuWant {
		p.Missing = append(p.Missing, fmt.Sprintf("an underlay MTU of %d (network.mtu): %s has MTU %d; write `mtu: %d` under network, or raise the interface's MTU", mtuWant, p.Iface, p.MTU, p.MTU))
	}
	return p
}

func runPreflight(ctx context.Context, cl *xssh.Client, c *spec.Cluster, h spec.Host) (preflight, error) {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	out, err := run(ctx, cl, "sh -s", strings.NewReader(preflightScript(c, h)))
	if err != nil {
		return preflight{}, fmt.Errorf("checking the server: %w", err)
	}
	return parsePreflight(string(out), c.Network.MTU), nil
}
