package up

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/naming"
)

// overlayEntries counts the FDB entries (bridge and vxlan driver, as
// `bridge fdb show dev vxlanVNI` lists them) and the IPv4 neighbor entries
// of a host's vxlan device.
func overlayEntries(hostNetns string, vni int) (fdb, neigh int, err error) {
	ns, err := netns.GetFromName(hostNetns)
	if err != nil {
		return 0, 0, fmt.Errorf("opening network namespace %s: %w", hostNetns, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return 0, 0, fmt.Errorf("opening netlink in %s: %w", hostNetns, err)
	}
	defer h.Close()
	dev := naming.VXLANDevice(vni)
	link, err := h.LinkByName(dev)
	if err != nil {
		return 0, 0, fmt.Errorf("finding %s in %s: %w", dev, hostNetns, err)
	}
	fdbs, err := h.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return 0, 0, fmt.Errorf("listing FDB entries of %s in %s: %w", dev, hostNetns, err)
	}
	neighs, err := h.NeighList(link.Attrs().Index, unix.AF_INET)
	if err != nil {
		return 0, 0, fmt.Errorf("listing neighbor entries of %s in %s: %w", dev, hostNetns, err)
	}
	return len(fdbs), len(neighs), nil
}

// memory is a process's resident set: now and its peak (high-water mark).
type memory struct {
	RSS  int64 // bytes, VmRSS
	Peak int64 // bytes, VmHWM
}

// processMemory reads VmRSS and VmHWM of pid from /proc.
func processMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("reading memory of process %d: %w", pid, err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return memory{}, fmt.Errorf("reading memory of process %d: unexpected %s line %q", pid, key, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("reading memory of process %d: %s: %w", pid, key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb * 1024
		} else {
			m.Peak = kb * 1024
		}
	}
	if err := sc.Err(); err != nil {
		return memory{}, fmt.Errorf("reading memory of process %d: %w", pid, err)
	}
	if m.Peak == 0 {
		return memory{}, fmt.Errorf("reading memory of process %d: no VmHWM (a kernel thread or a zombie?)", pid)
	}
	return m, nil
}

// resolverPid reads the pid the host's agent recorded for its DNS resolver.
func resolverPid(stateRoot, cluster, host string) (int, error) {
	path := filepath.Join(naming.HostStateDir(stateRoot, cluster, host), "resolver.pid")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading the resolver's pid of host %s: %w", host, err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0, fmt.Errorf("reading the resolver's pid of host %s: %s is empty", host, path)
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0, fmt.Errorf("reading the resolver's pid of host %s from %s: %w", host, path, err)
	}
	return pid, nil
}

// processAlive reports whether pid exists (a zombie counts as gone).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(rest, "Z")
}

// leftoverNamespaces lists the named network namespaces of cluster.
func leftoverNamespaces(cluster string) ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing network namespaces: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), naming.NetnsPrefix(cluster)) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// it is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTime is the CPU time (user + system) pid has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time of process %d: %w", pid, err)
	}
	// Fields after the parenthesised command name, which may hold spaces:
	// state is field 3, utime 14 and stime 15.
	_, rest, ok := strings.Cut(string(b), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0, fmt.Errorf("reading CPU time of process %d: unexpected /proc/%d/stat", pid, pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading CPU time of process %d: %w", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
