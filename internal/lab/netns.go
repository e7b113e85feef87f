package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/nsthread"
)

// netnsDir is where named network namespaces are bind-mounted, shared with
// iproute2 (`ip netns`) and the netns library.
const netnsDir = "/run/netns"

func netnsPath(name string) string { return filepath.Join(netnsDir, name) }

// isNetnsMount reports whether path is a bind-mounted network namespace
// rather than the empty placeholder file an interrupted creation leaves.
func isNetnsMount(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("inspecting namespace file %s: %w", path, err)
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// prepareNetnsDir makes /run/netns a shared mount the way iproute2 does, so
// that namespaces added or deleted later propagate into mount namespaces
// created after this (containers), instead of pinning stale copies there.
func prepareNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", netnsDir, err)
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("making %s a shared mount: %w", netnsDir, err)
	}
	// EINVAL: not a mount point yet; make it one, then share it.
	if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting %s onto itself: %w", netnsDir, err)
	}
	if err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making %s a shared mount: %w", netnsDir, err)
	}
	return nil
}

// ensureNamedNetns opens the named namespace, creating it when missing. A
// placeholder left by an interrupted creation is replaced. The caller closes
// the handle.
func ensureNamedNetns(name string) (ns netns.NsHandle, created bool, err error) {
	path := netnsPath(name)
	mounted, err := isNetnsMount(path)
	if err != nil {
		return netns.None(), false, err
	}
	if mounted {
		ns, err := netns.GetFromPath(path)
		if err != nil {
			return netns.None(), false, fmt.Errorf("opening namespace %s: %w", name, err)
		}
		return ns, false, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return netns.None(), false, fmt.Errorf("removing leftover namespace file %s: %w", path, err)
	}
	ns, err = newNamedNetns(name)
	if err != nil {
		return netns.None(), false, err
	}
	return ns, true, nil
}

// newNamedNetns creates a named namespace; a failed creation leaves no
// placeholder file behind.
func newNamedNetns(name string) (netns.NsHandle, error) {
	ns, err := nsthread.NewNamed(name)
	if err != nil && !errors.Is(err, os.ErrExist) {
		_ = os.Remove(netnsPath(name))
	}
	return ns, err
}

// setSysctls writes net sysctls (paths below /proc/sys) inside ns, skipping
// the ones that already hold the value.
func setSysctls(ns netns.NsHandle, values map[string]string) error {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return nsthread.Do(ns, func() error {
		for _, key := range keys {
			path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
			current, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) && strings.HasPrefix(key, "net.bridge.") {
				continue // no br_netfilter: bridged frames never meet the IP hooks anyway
			}
			if err != nil {
				return fmt.Errorf("reading sysctl %s: %w", key, err)
			}
			if strings.TrimSpace(string(current)) == values[key] {
				continue
			}
			if err := os.WriteFile(path, []byte(values[key]), 0o644); err != nil {
				return fmt.Errorf("setting sysctl %s=%s: %w", key, values[key], err)
			}
		}
		return nil
	})
}

// listNamedNetns returns the named namespaces (or leftover placeholders)
// whose name starts with prefix.
func listNamedNetns(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing %s: %w", netnsDir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// deleteNamedNetns unmounts and removes a named namespace. The namespace
// itself, with its links, goes away once no process is left in it.
func deleteNamedNetns(name string) error {
	path := netnsPath(name)
	// Mounts may be stacked when two tools raced to create the same name.
	for range 8 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("unmounting namespace %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing namespace file %s: %w", path, err)
	}
	return nil
}
