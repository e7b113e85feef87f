package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Freezer is the cgroup v1 controller that stops and resumes every process
// of a cgroup and its descendants at once: how weft crashes a host without
// killing it (its processes stop answering, their sockets stay open).
const Freezer = "freezer"

func freezerDir(rel string) string { return filepath.Join(Root, Freezer, rel) }

// haveFreezer reports whether the freezer hierarchy is mounted here.
func haveFreezer() bool {
	_, err := os.Stat(filepath.Join(Root, Freezer, "freezer.state"))
	if err == nil {
		return true
	}
	// The root cgroup has no freezer.state; the mount point is enough.
	fi, err := os.Stat(filepath.Join(Root, Freezer))
	return err == nil && fi.IsDir()
}

// joinFreezer moves pid into rel of the freezer hierarchy, when there is one,
// so that a host's or a container's processes can be frozen as a group.
func joinFreezer(rel string, pid int) error {
	if !haveFreezer() {
		return nil
	}
	return joinIn(Freezer, rel, pid)
}

// Freeze stops every process below rel and waits until the kernel reports
// the group FROZEN (ctx bounds the wait).
func Freeze(ctx context.Context, rel string) error {
	if !haveFreezer() {
		return errors.New("freezing processes: the cgroup v1 freezer is not mounted at " + filepath.Join(Root, Freezer))
	}
	d := freezerDir(rel)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("creating freezer cgroup %s: %w", d, err)
	}
	return setFreezer(ctx, d, "FROZEN")
}

// Thaw resumes every process below rel: rel and every group below it that
// was frozen itself (in cgroup v1 a child frozen on its own stays frozen
// when its parent thaws). Thawing a group that was never frozen, or does not
// exist, is not an error.
func Thaw(ctx context.Context, rel string) error {
	dirs, err := subtree(freezerDir(rel))
	if err != nil {
		return fmt.Errorf("walking freezer cgroup %s: %w", rel, err)
	}
	for _, d := range dirs {
		if err := setFreezer(ctx, d, "THAWED"); err != nil {
			if _, statErr := os.Stat(d); errors.Is(statErr, os.ErrNotExist) {
				continue // removed under us
			}
			return err
		}
	}
	return nil
}

// FreezerState is the kernel's state of rel: THAWED, FREEZING or FROZEN
// ("" when the group does not exist).
func FreezerState(rel string) string {
	b, err := os.ReadFile(filepath.Join(freezerDir(rel), "freezer.state"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func setFreezer(ctx context.Context, d, want string) error {
	path := filepath.Join(d, "freezer.state")
	for {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			return fmt.Errorf("writing %s to %s: %w", want, path, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if strings.TrimSpace(string(b)) == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to become %s: %w", d, want, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
