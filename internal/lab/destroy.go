package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/provider"
)

// killTimeout bounds how long Destroy waits for a cluster's processes to die.
const killTimeout = 10 * time.Second

// volumesDir is the state subdirectory Destroy keeps when asked to.
const volumesDir = "volumes"

// Removed is what Destroy took away.
type Removed = provider.Removed

// Destroy removes everything of the cluster from this machine: it kills
// every process in the cluster's cgroup, deletes every namespace named with
// the cluster's prefix, removes the cgroups and the state directory (all but
// its volumes when keepVolumes). It is safe when nothing exists, carries on
// past failures and reports them all, and never touches another cluster.
func (l *Lab) Destroy(ctx context.Context, cluster string, keepVolumes bool) (Removed, error) {
	var removed Removed
	if err := validName("cluster", cluster); err != nil {
		return removed, err
	}
	var problems []error

	// Processes first: a namespace only goes away with its last process.
	var killErrs []error
	removed.Processes, killErrs = killCgroup(naming.CgroupRelPath(cluster), "cluster "+cluster)
	problems = append(problems, killErrs...)

	if err := ctx.Err(); err != nil {
		return removed, errors.Join(append(problems, fmt.Errorf("destroying cluster %s: %w", cluster, err))...)
	}
	var nsErrs []error
	removed.Namespaces, nsErrs = deleteNamespaces(naming.NetnsPrefix(cluster))
	problems = append(problems, nsErrs...)

	stateRemoved, err := removeStateDir(naming.StateDir(l.stateRoot(), cluster), keepVolumes)
	if err != nil {
		problems = append(problems, err)
	}
	removed.StateDir = stateRemoved

	l.log().Info("destroyed lab cluster", "cluster", cluster, "namespaces", len(removed.Namespaces), "processes", removed.Processes, "state_dir", removed.StateDir)
	if len(problems) > 0 {
		return removed, fmt.Errorf("destroying cluster %s left something behind (run it again once the cause is fixed):\n%w", cluster, errors.Join(problems...))
	}
	return removed, nil
}

// killCgroup kills every process of the cgroup rel (what names it in
// errors) and removes it from every controller; it returns how many
// processes there were.
func killCgroup(rel, what string) (int, []error) {
	var problems []error
	pids, err := cgroup.Pids(rel)
	if err != nil {
		problems = append(problems, err)
	}
	if err := cgroup.KillAll(rel, killTimeout); err != nil {
		problems = append(problems, fmt.Errorf("stopping processes of %s: %w", what, err))
	}
	for _, controller := range naming.CgroupControllers() {
		if controller == cgroup.Controller {
			continue // KillAll removed it
		}
		if err := cgroup.RemoveFrom(controller, rel); err != nil {
			problems = append(problems, err)
		}
	}
	return len(pids), problems
}

// deleteNamespaces deletes every named namespace starting with prefix and
// returns those it deleted.
func deleteNamespaces(prefix string) ([]string, []error) {
	var problems []error
	names, err := listNamedNetns(prefix)
	if err != nil {
		problems = append(problems, err)
	}
	var deleted []string
	for _, name := range names {
		if err := deleteNamedNetns(name); err != nil {
			problems = append(problems, err)
			continue
		}
		deleted = append(deleted, name)
	}
	return deleted, problems
}

// Exists reports whether any namespace of the cluster exists.
func (l *Lab) Exists(cluster string) (bool, error) {
	if err := validName("cluster", cluster); err != nil {
		return false, err
	}
	names, err := listNamedNetns(naming.NetnsPrefix(cluster))
	if err != nil {
		return false, err
	}
	return len(names) > 0, nil
}

// removeStateDir removes dir, or everything in it but volumes/. Mounts below
// it are detached first, so that removing a container's directory cannot
// reach through a bind mount into a volume or anywhere else.
func removeStateDir(dir string, keepVolumes bool) (bool, error) {
	if _, err := os.Lstat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("inspecting state directory %s: %w", dir, err)
	}
	keep := ""
	if keepVolumes {
		keep = filepath.Join(dir, volumesDir)
	}
	if err := unmountBelow(dir, keep); err != nil {
		return false, err
	}
	if !keepVolumes {
		if err := os.RemoveAll(dir); err != nil {
			return false, fmt.Errorf("removing state directory %s: %w", dir, err)
		}
		return true, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("listing state directory %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Name() == volumesDir {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			return false, fmt.Errorf("removing %s: %w", p, err)
		}
	}
	return true, nil
}

// unmountBelow detaches every mount at or below dir, deepest first, except
// those at or below keep (when keep is not empty).
func unmountBelow(dir, keep string) error {
	mounts, err := mountPoints()
	if err != nil {
		return err
	}
	var targets []string
	for _, m := range mounts {
		if !isAtOrBelow(m, dir) || (keep != "" && isAtOrBelow(m, keep)) {
			continue
		}
		targets = append(targets, m)
	}
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	for _, m := range targets {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmounting %s before removing state: %w", m, err)
		}
	}
	return nil
}

func isAtOrBelow(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

// mountPoints lists the mount points of this process's mount namespace.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mount table: %w", err)
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		points = append(points, unescapeMountPath(fields[4]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mount table: %w", err)
	}
	return points, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
