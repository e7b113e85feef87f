package agent

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/weft-dev/weft/internal/runtime"
)

// ensureVolume creates a volume's host directory, owned by the container's
// user so that a program that drops root (PostgreSQL) can write its data.
// imageRoot, when set, is the container's image: user and group names are
// looked up in its /etc/passwd and /etc/group instead of the host's.
// With a user namespace (ids) the volume's files are first shifted into
// its host ids when they are not yet there (runtime.OwnVolume: a volume
// of an earlier weft, or of the service before it turned `userns` on or
// off), and the owner is the mapped one; without an owner the volume
// belongs to the container's root, the mapped root under a user namespace.
func ensureVolume(dir, owner, imageRoot string, ids runtime.IDMap, cluster string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating volume %s: %w", dir, err)
	}
	if err := runtime.OwnVolume(dir, ids, cluster); err != nil {
		return err
	}
	if owner == "" {
		if !ids.On() {
			return nil
		}
		owner = "0:0"
	}
	lookup := lookupOwner
	if imageRoot != "" {
		lookup = func(owner string) (int, int, error) { return lookupOwnerInImage(imageRoot, owner) }
	}
	uid, gid, err := lookup(owner)
	if err != nil {
		return fmt.Errorf("volume %s: %w", dir, err)
	}
	if uid, gid, err = runtime.HostIDs(ids, uid, gid); err != nil {
		return fmt.Errorf("volume %s of user %s: %w", dir, owner, err)
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

// lookupOwnerInImage is lookupOwner against an image's /etc/passwd and
// /etc/group (read inside the image: no symlink leads out of it).
func lookupOwnerInImage(root, owner string) (uid, gid int, err error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return 0, 0, fmt.Errorf("opening the image: %w", err)
	}
	defer r.Close()
	find := func(file, name string) ([]string, error) {
		b, err := r.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number and the image has no /%s: %w", name, file, err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Split(line, ":"); len(f) >= 4 && f[0] == name {
				return f, nil
			}
		}
		return nil, fmt.Errorf("%q is not in the image's /%s; use a user of the image or a numeric uid:gid", name, file)
	}
	name, group, hasGroup := strings.Cut(owner, ":")
	if n, err := strconv.Atoi(name); err == nil {
		uid, gid = n, n
	} else {
		f, err := find("etc/passwd", name)
		if err != nil {
			return 0, 0, fmt.Errorf("user %w", err)
		}
		uid, _ = strconv.Atoi(f[2])
		gid, _ = strconv.Atoi(f[3])
	}
	if hasGroup {
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		} else {
			f, err := find("etc/group", group)
			if err != nil {
				return 0, 0, fmt.Errorf("group %w", err)
			}
			gid, _ = strconv.Atoi(f[2])
		}
	}
	return uid, gid, nil
}
