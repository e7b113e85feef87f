package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/weft-dev/weft/internal/spec"
)

// unpack writes img's filesystem with owners o, and its config, under
// Root/<hex> (the tree in o.variantDir()). The layers are flattened by
// go-containerregistry (mutate.Extract applies the whiteouts); this only
// writes the resulting entries, through an os.Root so no entry (../, an
// absolute symlink) can write outside the image's directory. An image
// already unpacked with other owners gets this tree beside the other.
func (s *Store) unpack(ctx context.Context, src spec.ImageSource, digest v1.Hash, img v1.Image, o Owners) (err error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("image %s: reading its config: %w", src, err)
	}
	cfg, err := json.Marshal(cf)
	if err != nil {
		return fmt.Errorf("image %s: encoding its config: %w", src, err)
	}
	if err := os.MkdirAll(s.Root, 0o755); err != nil {
		return fmt.Errorf("creating the image directory %s: %w", s.Root, err)
	}
	tmp, err := os.MkdirTemp(s.Root, tmpPrefix+digest.Hex[:12]+"-")
	if err != nil {
		return fmt.Errorf("image %s: creating a directory to unpack into: %w", src, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	// Readable by the containers' users, as a registry's image would be.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("image %s: %w", src, err)
	}
	variant := o.variantDir()
	rootfs := filepath.Join(tmp, variant)
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return fmt.Errorf("image %s: %w", src, err)
	}
	s.log().Info("unpacking image", "image", src.String(), "digest", digest.String(), "tree", variant)
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := extract(ctx, tar.NewReader(rc), rootfs, o); err != nil {
		return fmt.Errorf("image %s: unpacking: %w", src, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, configFile), cfg, 0o644); err != nil {
		return fmt.Errorf("image %s: writing its config: %w", src, err)
	}
	dir := filepath.Join(s.Root, digest.Hex)
	if _, err := os.Stat(dir); err == nil {
		// Unpacked before with other owners: add this tree.
		if err := os.Rename(rootfs, filepath.Join(dir, variant)); err != nil {
			return fmt.Errorf("image %s: moving the unpacked tree %s into place: %w", src, variant, err)
		}
		if err := os.RemoveAll(tmp); err != nil {
			return fmt.Errorf("image %s: removing the unpack directory: %w", src, err)
		}
	} else if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("image %s: moving the unpacked image into place: %w", src, err)
	}
	return s.logUnpack(digest, variant, src)
}

// dirMode is a directory's mode, applied once its contents are written
// (a read-only directory would refuse them).
type dirMode struct {
	name string
	mode os.FileMode
}

// extract writes a flattened image's tar stream into dir, each entry owned
// as o says. Device nodes are skipped: every container gets a fresh /dev.
func extract(ctx context.Context, tr *tar.Reader, dir string, o Owners) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return extractInto(ctx, tr, root, o, root)
}

// extractInto is extract into root, setting owners through own.
func extractInto(ctx context.Context, tr *tar.Reader, root *os.Root, o Owners, own lchowner) error {
	// The image's root directory is its root user's (the overlay's upper
	// layer and a copied layer take its owner).
	uid, gid, err := o.host(0, 0)
	if err != nil {
		return err
	}
	if err := own.Lchown(".", uid, gid); err != nil {
		return fmt.Errorf("owning the image's root by %d:%d: %w", uid, gid, err)
	}
	var dirs []dirMode
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the image's layers: %w", err)
		}
		name := path.Clean("/" + hdr.Name)[1:]
		if name == "" {
			continue
		}
		mode := hdr.FileInfo().Mode()
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return fmt.Errorf("%s: creating its directory: %w", name, err)
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			dirs = append(dirs, dirMode{name, mode})
		case tar.TypeReg:
			if err := writeFile(root, name, tr); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case tar.TypeSymlink:
			_ = root.Remove(name)
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case tar.TypeLink:
			_ = root.Remove(name)
			target := path.Clean("/" + hdr.Linkname)[1:]
			if err := root.Link(target, name); err != nil {
				return fmt.Errorf("%s: hard link to %s: %w", name, target, err)
			}
		default:
			continue // devices and fifos
		}
		uid, gid, err := o.host(hdr.Uid, hdr.Gid)
		if err != nil {
			return fmt.Errorf("/%s: %w", name, err)
		}
		if err := own.Lchown(name, uid, gid); err != nil {
			return fmt.Errorf("%s: owning it by %d:%d: %w", name, uid, gid, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			// After the chown, which clears set-user-ID bits.
			if err := root.Chmod(name, mode.Perm()|mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := root.Chmod(d.name, d.mode.Perm()|d.mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return nil
}

func writeFile(root *os.Root, name string, r io.Reader) error {
	_ = root.Remove(name) // a hard link's other names keep their content
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
