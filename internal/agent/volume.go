package agent

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// ensureVolume creates a volume's host directory, owned by the container's
// user so that a program that drops root (PostgreSQL) can write its data.
func ensureVolume(dir, owner string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating volume %s: %w", dir, err)
	}
	if owner == "" {
		return nil
	}
	uid, gid, err := lookupOwner(owner)
	if err != nil {
		return fmt.Errorf("volume %s: %w", dir, err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("giving volume %s to %s: %w", dir, owner, err)
	}
	return nil
}

// lookupOwner resolves "name", "uid", "name:group" or "uid:gid".
func lookupOwner(owner string) (uid, gid int, err error) {
	name, group, hasGroup := strings.Cut(owner, ":")
	if n, err := strconv.Atoi(name); err == nil {
		uid, gid = n, n
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return 0, 0, fmt.Errorf("user %q: %w", name, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	if hasGroup {
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		} else {
			g, err := user.LookupGroup(group)
			if err != nil {
				return 0, 0, fmt.Errorf("group %q: %w", group, err)
			}
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	return uid, gid, nil
}
