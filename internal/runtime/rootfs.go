package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/naming"
)

// A container's private root. The init builds it in its own mount namespace
// and pivots into it, so the container sees only:
//
//   - the host's system directories, read-only (hostSystemDirs; the
//     usr-merged symlinks /bin, /lib... are copied as symlinks);
//   - the directory of its program and its workdir, read-only, when they
//     are elsewhere on the host (the lab runs binaries from a checkout);
//   - its volumes, read-write;
//   - fresh writable tmpfs at /tmp, /var/tmp, /run and /dev/shm;
//   - a minimal /dev (null, zero, full, random, urandom, tty, its own
//     devpts), its own /proc (with /proc/sys read-only and kernel-wide
//     files masked) and a read-only /sys;
//   - its generated /etc/resolv.conf and /etc/hosts.
//
// Everything else of the host stays out of sight: /var/lib/weft (state,
// bootstrap.json, the agent's socket), /run/netns, /root, /home, other
// containers' volumes. The root itself is a tmpfs made read-only once
// built, so the container cannot add files outside its writable paths.

// hostSystemDirs are shown read-only in every container.
var hostSystemDirs = naming.HostSystemDirs()

// writableTmpfs are fresh, empty and writable in every container; their
// pages count against the container's memory limit.
var writableTmpfs = []struct {
	path string
	mode string
}{{"/tmp", "1777"}, {"/var/tmp", "1777"}, {"/run", "0755"}}

// devNodes are bind-mounted from the host's /dev.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// maskedProcFiles are kernel-wide files a container has no business
// reading or writing; /dev/null is mounted over them when they exist.
var maskedProcFiles = []string{"kcore", "keys", "timer_list", "sched_debug", "sysrq-trigger", "latency_stats", "kallsyms", "kmsg"}

// readOnlyProcDirs are made read-only: /proc/sys holds kernel-wide
// settings (the container's network settings are written before).
var readOnlyProcDirs = []string{"sys", "irq", "bus", "fs", "acpi", "scsi"}

// extraReadOnly returns the host directories a container needs besides the
// system ones: the directory of its program (and of the file it links
// to) and its workdir, when they exist on the host and are not already
// below a system directory. Sorted, without duplicates or nesting.
func extraReadOnly(command []string, workdir string, exists func(string) bool, evalSymlinks func(string) (string, error)) []string {
	var dirs []string
	add := func(p string) {
		p = filepath.Clean(p)
		if p == "/" || !filepath.IsAbs(p) || underAny(p, hostSystemDirs) || !exists(p) {
			return
		}
		dirs = append(dirs, p)
	}
	if len(command) > 0 && filepath.IsAbs(command[0]) {
		add(filepath.Dir(command[0]))
		if real, err := evalSymlinks(command[0]); err == nil {
			add(filepath.Dir(real))
		}
	}
	if workdir != "" {
		add(workdir)
	}
	slices.Sort(dirs)
	var out []string
	for _, d := range dirs {
		if len(out) > 0 && under(d, out[len(out)-1]) {
			continue // nested in (or equal to) one already shown
		}
		out = append(out, d)
	}
	return out
}

func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if under(p, d) {
			return true
		}
	}
	return false
}

// buildRootfs builds the container's root at root (an empty directory on
// the host, in this private mount namespace) and pivots into it. On
// return, / is the container's root and the host's is unmounted.
func buildRootfs(root string, cfg initConfig) error {
	// The new mount namespace starts as a copy whose shared mounts still
	// propagate to the host; make everything private before mounting.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / rprivate: %w", err)
	}
	in := func(p string) string { return filepath.Join(root, p) }
	if cfg.Image != "" {
		if _, err := mountImageRoot(root, cfg.Image, cfg.Layer, cfg.ForceCopy); err != nil {
			return err
		}
		return finishRootfs(root, cfg, func(p string, file bool) error { return mountPointIn(root, p, file) })
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("creating root mount point %s: %w", root, err)
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("mounting the container's root tmpfs at %s: %w", root, err)
	}

	for _, d := range hostSystemDirs {
		fi, err := os.Lstat(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("looking at the host's %s: %w", d, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(d)
			if err != nil {
				return fmt.Errorf("reading the host's symlink %s: %w", d, err)
			}
			if err := os.Symlink(target, in(d)); err != nil {
				return fmt.Errorf("copying symlink %s into the container's root: %w", d, err)
			}
			continue
		}
		if err := bindReadOnly(d, in(d)); err != nil {
			return err
		}
	}
	for _, t := range writableTmpfs {
		if err := mountTmpfs(in(t.path), unix.MS_NOSUID|unix.MS_NODEV, "mode="+t.mode+tmpfsOwner(cfg.UserNS)); err != nil {
			return err
		}
	}
	// After the tmpfs: a program under /tmp (as tests build them) is shown
	// on top of the container's empty /tmp, not hidden by it.
	exists := func(p string) bool { fi, err := os.Stat(p); return err == nil && fi.IsDir() }
	for _, d := range extraReadOnly(cfg.Command, cfg.Workdir, exists, filepath.EvalSymlinks) {
		if err := bindReadOnly(d, in(d)); err != nil {
			return err
		}
	}
	return finishRootfs(root, cfg, nil)
}

// finishRootfs mounts what every container has (/dev, /proc, /sys, its
// resolv.conf and hosts, its volumes) and pivots into root. mountPoint,
// when set, makes each mount point safely (image roots, rootfs_image.go);
// when nil they are made with MkdirAll on the root weft built itself.
func finishRootfs(root string, cfg initConfig, mountPoint func(p string, file bool) error) error {
	in := func(p string) string { return filepath.Join(root, p) }
	if mountPoint != nil {
		for _, d := range []string{"/dev", "/proc", "/sys"} {
			if err := mountPoint(d, false); err != nil {
				return err
			}
		}
		for _, f := range []struct{ src, dst string }{{cfg.ResolvConf, "/etc/resolv.conf"}, {cfg.Hosts, "/etc/hosts"}} {
			if f.src != "" {
				if err := mountPoint(f.dst, true); err != nil {
					return err
				}
			}
		}
		for _, v := range cfg.Volumes {
			if err := mountPoint(v.Path, false); err != nil {
				return err
			}
		}
		if cfg.Workdir != "" {
			if err := mountPoint(cfg.Workdir, false); err != nil {
				return err
			}
		}
	}
	if err := buildDev(in("/dev")); err != nil {
		return err
	}
	if err := buildProc(in("/proc"), in("/dev/null"), cfg.UserNS); err != nil {
		return err
	}
	if err := os.MkdirAll(in("/sys"), 0o755); err != nil {
		return fmt.Errorf("creating /sys: %w", err)
	}
	if err := unix.Mount("sysfs", in("/sys"), "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting a read-only /sys: %w", err)
	}
	for _, f := range []struct{ src, dst string }{{cfg.ResolvConf, "/etc/resolv.conf"}, {cfg.Hosts, "/etc/hosts"}} {
		if f.src == "" {
			continue
		}
		if err := unix.Mount(f.src, in(f.dst), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting %s over %s (the file must exist on the host): %w", f.src, f.dst, err)
		}
	}
	for _, v := range cfg.Volumes {
		if err := os.MkdirAll(v.HostPath, 0o755); err != nil {
			return fmt.Errorf("creating volume directory %s: %w", v.HostPath, err)
		}
		if err := os.MkdirAll(in(v.Path), 0o755); err != nil {
			return fmt.Errorf("creating volume mount point %s (a volume cannot go below a read-only system directory such as /usr or /etc): %w", v.Path, err)
		}
		if err := unix.Mount(v.HostPath, in(v.Path), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting volume %s at %s: %w", v.HostPath, v.Path, err)
		}
	}
	if cfg.Workdir != "" {
		// A workdir that does not exist on the host is an empty directory.
		if err := os.MkdirAll(in(cfg.Workdir), 0o755); err != nil && !errors.Is(err, unix.EROFS) {
			return fmt.Errorf("creating workdir %s: %w", cfg.Workdir, err)
		}
	}
	// An image's root is the container's writable layer; the root weft
	// builds from the host's directories is made read-only.
	return pivotInto(root, cfg.Image == "")
}

// pivotInto makes root the namespace's / and detaches the old root, and
// with readOnly remounts it read-only.
func pivotInto(root string, readOnly bool) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("entering the container's root: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on the new one; unmounting
	// "." then removes the old root (runc's way, no put_old directory).
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into the container's root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("entering /: %w", err)
	}
	if !readOnly {
		return nil
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making the container's root read-only: %w", err)
	}
	return nil
}

// bindReadOnly shows the host directory src at dst, read-only, without
// set-user-ID programs or device files.
func bindReadOnly(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("creating mount point for %s: %w", src, err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting the host's %s: %w", src, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", src, err)
	}
	return nil
}

func mountTmpfs(dst string, flags uintptr, data string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	if err := unix.Mount("tmpfs", dst, "tmpfs", flags, data); err != nil {
		return fmt.Errorf("mounting a tmpfs at %s: %w", dst, err)
	}
	return nil
}

// buildDev makes a minimal /dev: a few device nodes of the host, a devpts
// of the container's own, /dev/shm, and the usual symlinks.
func buildDev(dev string) error {
	if err := mountTmpfs(dev, unix.MS_NOSUID, "mode=0755,size=64k"); err != nil {
		return err
	}
	for _, n := range devNodes {
		dst := filepath.Join(dev, n)
		if err := os.WriteFile(dst, nil, 0o666); err != nil {
			return fmt.Errorf("creating mount point %s: %w", dst, err)
		}
		if err := unix.Mount("/dev/"+n, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting /dev/%s: %w", n, err)
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := os.MkdirAll(pts, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", pts, err)
	}
	if err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mounting the container's devpts: %w", err)
	}
	if err := mountTmpfs(filepath.Join(dev, "shm"), unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return err
	}
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", name, err)
		}
	}
	return nil
}

// tmpfsOwner is the mount option that gives a fresh tmpfs to the
// container's root: the mapped root under a user namespace ("" without
// one: host root owns it, as the container's root is host root).
func tmpfsOwner(m IDMap) string {
	if !m.On() {
		return ""
	}
	return fmt.Sprintf(",uid=%d,gid=%d", m.HostBase, m.HostBase)
}

// buildProc mounts a /proc of the container's PID namespace, lets
// unprivileged ICMP echo sockets work in its network namespace (so ping
// needs no CAP_NET_RAW), lets any process of a user namespace bind ports
// below 1024 (the network namespace belongs to the host's user namespace,
// so CAP_NET_BIND_SERVICE in the container's counts for nothing there),
// then makes kernel-wide settings read-only and masks kernel-wide files.
func buildProc(proc, devNull string, ids IDMap) error {
	if err := os.MkdirAll(proc, 0o755); err != nil {
		return fmt.Errorf("creating /proc: %w", err)
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	// Per network namespace: affects this container only.
	if err := os.WriteFile(filepath.Join(proc, "sys/net/ipv4/ping_group_range"), []byte("0 2147483647"), 0o644); err != nil {
		return fmt.Errorf("allowing unprivileged ping in the container's network namespace: %w", err)
	}
	if ids.On() {
		if err := os.WriteFile(filepath.Join(proc, "sys/net/ipv4/ip_unprivileged_port_start"), []byte("0"), 0o644); err != nil {
			return fmt.Errorf("letting the container's user namespace bind ports below 1024 in its network namespace: %w", err)
		}
	}
	for _, d := range readOnlyProcDirs {
		p := filepath.Join(proc, d)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting /proc/%s: %w", d, err)
		}
		if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("making /proc/%s read-only: %w", d, err)
		}
	}
	for _, f := range maskedProcFiles {
		p := filepath.Join(proc, f)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			continue
		}
		if err := unix.Mount(devNull, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("masking /proc/%s: %w", f, err)
		}
	}
	return nil
}
