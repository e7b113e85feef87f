// Package cgroup owns weft's cgroup v1 directories: every agent and container
// process of a cluster sits below one cgroup per controller, so `weft down`
// finds and stops exactly that cluster's processes.
package cgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Root is where the cgroup v1 controllers are mounted.
const Root = "/sys/fs/cgroup"

// Controller weft uses to find processes; pids is always there in cgroup v1.
const Controller = "pids"

func dir(rel string) string { return filepath.Join(Root, Controller, rel) }

// Join creates the cgroup rel (nested dirs allowed) and moves pid into it,
// in the pids hierarchy (to find processes) and the freezer one (to freeze
// them as a group). Children inherit both.
func Join(rel string, pid int) error {
	if err := joinIn(Controller, rel, pid); err != nil {
		return err
	}
	return joinFreezer(rel, pid)
}

func joinIn(controller, rel string, pid int) error {
	d := filepath.Join(Root, controller, rel)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("creating cgroup %s: %w", d, err)
	}
	if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("moving pid %d into cgroup %s: %w", pid, d, err)
	}
	return nil
}

// Pids lists every process in rel and all cgroups below it.
func Pids(rel string) ([]int, error) {
	var pids []int
	err := filepath.WalkDir(dir(rel), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		if d.Name() != "cgroup.procs" {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil // removed under us
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if n, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
				pids = append(pids, n)
			}
		}
		return sc.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("listing processes of cgroup %s: %w", rel, err)
	}
	return pids, nil
}

// KillAll sends SIGKILL to every process below rel until none is left or
// the timeout passes, then removes the cgroup directories (in the freezer,
// memory and cpu hierarchies too). A frozen group is thawed first: a frozen process does not
// die of SIGKILL until it runs again.
func KillAll(rel string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	thawCtx, cancel := context.WithDeadline(context.Background(), deadline)
	err := Thaw(thawCtx, rel)
	cancel()
	if err != nil {
		return fmt.Errorf("thawing %s before killing it: %w", rel, err)
	}
	for {
		pids, err := Pids(rel)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			if err := RemoveFrom(Freezer, rel); err != nil {
				return err
			}
			if err := removeLimitGroups(rel); err != nil {
				return err
			}
			return Remove(rel)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of cgroup %s still alive after %s", pids, rel, timeout)
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RemoveIfEmpty deletes rel from every hierarchy weft uses when no cgroup
// is left below it; one that still has children (another host of the
// cluster on this machine) is kept.
func RemoveIfEmpty(rel string) error {
	for _, c := range append([]string{Controller, Freezer}, limitControllers...) {
		err := os.Remove(filepath.Join(Root, c, rel))
		switch {
		case err == nil, errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.EBUSY), errors.Is(err, syscall.ENOTEMPTY):
		default:
			return fmt.Errorf("removing cgroup %s of %s: %w", rel, c, err)
		}
	}
	return nil
}

// Remove deletes rel and every cgroup below it (they must be empty).
func Remove(rel string) error { return RemoveFrom(Controller, rel) }

// RemoveFrom deletes rel and every cgroup below it in one controller's
// hierarchy, deepest first: cgroup directories can only be removed empty.
func RemoveFrom(controller, rel string) error {
	dirs, err := subtree(filepath.Join(Root, controller, rel))
	if err != nil {
		return fmt.Errorf("walking cgroup %s: %w", rel, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
		}
	}
	return nil
}

// subtree lists the cgroup directory root and every one below it, parents
// before children; none when root does not exist.
func subtree(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	return dirs, err
}
