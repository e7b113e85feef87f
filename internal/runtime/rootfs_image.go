package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// An image container's root (Config.Image): the unpacked image, shared by
// every container of the host that runs it (internal/image), read-only,
// under a writable layer of the container's own. The layer is an overlayfs
// upper directory when the kernel has overlayfs, and otherwise a copy of
// the image made once per layer. Either way it lives in the container's
// state directory as layer-<config hash>: it survives restarts of the
// workload and of the init, and starts empty when the container's config
// changes (docker's container, recreated on change).
//
// What the kind of layer is is written to layer-<hash>/kind ("overlay" or
// "copy").
//
// With a user namespace the image's files are owned in the container's
// map on the host (internal/image unpacks a tree per map: Owners), so the
// container sees them with the image's own owners; imageOwnedFor checks
// that the tree given is that one. The layer's root takes the image
// root's owner and mode, so that / of the container is its root's.

const (
	layerPrefix  = "layer-"
	layerKind    = "kind"
	layerOverlay = "overlay"
	layerCopy    = "copy"
	copyComplete = ".weft-copy-complete"
)

// layerDir is the container's writable layer for the config of hash
// (created by the runtime before the init starts; other configs' layers
// are removed).
func prepareLayer(stateDir, hash string) (string, error) {
	name := layerPrefix + hash
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		return "", fmt.Errorf("listing %s: %w", stateDir, err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), layerPrefix) && e.Name() != name {
			if err := os.RemoveAll(filepath.Join(stateDir, e.Name())); err != nil {
				return "", fmt.Errorf("removing the writable layer of an earlier config: %w", err)
			}
		}
	}
	dir := filepath.Join(stateDir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the writable layer %s: %w", dir, err)
	}
	return dir, nil
}

// imageOwnedFor checks that the image tree at image is owned for a
// container with map m: its root directory's owner is the container's
// root (host uid m.HostBase, or 0 without a user namespace). A tree of
// other owners would show every file as nobody, or as the wrong user.
func imageOwnedFor(image string, m IDMap) error {
	var st syscall.Stat_t
	if err := syscall.Stat(image, &st); err != nil {
		return fmt.Errorf("reading the owner of image %s: %w", image, err)
	}
	if want := hostRange(m).HostBase; st.Uid != want {
		return fmt.Errorf("image %s is owned by host uid %d, not by the container's root (host uid %d, user namespace %q): unpack the image with the container's owners (internal/image Options.Owners)", image, st.Uid, want, m)
	}
	return nil
}

// ownLike gives dir the owner and permission bits of ref (the layer's
// root, that of the image's root).
func ownLike(dir, ref string) error {
	fi, err := os.Stat(ref)
	if err != nil {
		return fmt.Errorf("reading the image's root: %w", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Lchown(dir, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("owning %s like the image's root: %w", dir, err)
	}
	if err := os.Chmod(dir, fi.Mode()&(fs.ModePerm|fs.ModeSticky)); err != nil {
		return fmt.Errorf("setting the mode of %s like the image's root: %w", dir, err)
	}
	return nil
}

// kernelHasOverlay says whether /proc/filesystems lists overlay.
func kernelHasOverlay(filesystems string) bool {
	for _, line := range strings.Split(filesystems, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == "overlay" {
			return true
		}
	}
	return false
}

// mountImageRoot mounts the image at root with the container's writable
// layer on top: overlayfs when the kernel has it (and forceCopy is off),
// else a copy. It returns which.
func mountImageRoot(root, image, layer string, forceCopy bool) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("creating root mount point %s: %w", root, err)
	}
	fsList, _ := os.ReadFile("/proc/filesystems")
	kind := layerCopy
	if !forceCopy && kernelHasOverlay(string(fsList)) {
		upper, work := filepath.Join(layer, "upper"), filepath.Join(layer, "work")
		_, statErr := os.Stat(upper)
		for _, d := range []string{upper, work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return "", fmt.Errorf("creating %s: %w", d, err)
			}
		}
		// The overlay's root is the upper directory's: the image root's
		// owner (the mapped root under a user namespace). Once, when the
		// layer is new: the container may change its / later.
		if errors.Is(statErr, fs.ErrNotExist) {
			if err := ownLike(upper, image); err != nil {
				return "", err
			}
		}
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", image, upper, work)
		err := unix.Mount("overlay", root, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts)
		if err == nil {
			kind = layerOverlay
		} else if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENODEV) {
			return "", fmt.Errorf("mounting the image's overlay (%s): %w", opts, err)
		}
	}
	if kind == layerCopy {
		dst := filepath.Join(layer, "copy")
		if err := copyOnce(image, dst); err != nil {
			return "", err
		}
		if err := unix.Mount(dst, root, "", unix.MS_BIND, ""); err != nil {
			return "", fmt.Errorf("bind-mounting the container's copy of the image: %w", err)
		}
		if err := unix.Mount("", root, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return "", fmt.Errorf("remounting the container's copy of the image nosuid,nodev: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(layer, layerKind), []byte(kind+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("recording the kind of writable layer: %w", err)
	}
	return kind, nil
}

// copyOnce copies the image's tree to dst unless an earlier start did.
func copyOnce(src, dst string) error {
	if _, err := os.Stat(filepath.Join(dst, copyComplete)); err == nil {
		return nil
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("removing an incomplete copy of the image: %w", err)
	}
	if err := copyTree(src, dst); err != nil {
		return fmt.Errorf("copying the image into the container's writable layer: %w", err)
	}
	return os.WriteFile(filepath.Join(dst, copyComplete), nil, 0o600)
}

// copyTree copies directories, regular files and symlinks with their modes
// and owners (hard links become separate files).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := info.Sys().(*syscall.Stat_t)
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(p, target); err != nil {
				return err
			}
		default:
			return nil
		}
		if st != nil {
			if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			return os.Chmod(target, info.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// mountPointIn makes p (absolute, in the container) an existing directory
// (or, with file, a regular file) below root without following any
// symlink: the image and the container's writable layer are the
// container's to write, and a symlink planted there (/proc -> /etc of the
// host) must not steer a mount made before the pivot. A symlink where a
// file mount point belongs (/etc/resolv.conf -> ...) is replaced by a
// file; a symlink anywhere else is refused.
func mountPointIn(root, p string, file bool) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("opening the container's root: %w", err)
	}
	defer r.Close()
	parts := strings.Split(strings.Trim(filepath.Clean(p), "/"), "/")
	cur := "."
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		last := i == len(parts)-1
		fi, err := r.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if last && file {
				f, err := r.OpenFile(cur, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
				if err != nil {
					return fmt.Errorf("creating mount point %s in the image: %w", p, err)
				}
				f.Close()
				continue
			}
			if err := r.Mkdir(cur, 0o755); err != nil {
				return fmt.Errorf("creating mount point %s in the image: %w", p, err)
			}
		case err != nil:
			return fmt.Errorf("looking at %s in the image: %w", p, err)
		case fi.Mode()&fs.ModeSymlink != 0 && last && file:
			if err := r.Remove(cur); err != nil {
				return fmt.Errorf("replacing the symlink %s in the image by a file: %w", p, err)
			}
			f, err := r.OpenFile(cur, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return fmt.Errorf("creating mount point %s in the image: %w", p, err)
			}
			f.Close()
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("/%s is a symlink in the image; weft mounts %s there and does not follow symlinks: make it a directory in the image", cur, p)
		case last && file && !fi.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file in the image; weft mounts a file there", p)
		case !(last && file) && !fi.IsDir():
			return fmt.Errorf("/%s is not a directory in the image; weft mounts %s there", cur, p)
		}
	}
	return nil
}
