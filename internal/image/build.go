package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	goruntime "runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Entry is one file of an image made by Build.
type Entry struct {
	Path string      // absolute path in the image
	Src  string      // a file of this machine to copy; or
	Data []byte      // the file's content; or
	Link string      // a symlink's target; or
	Dir  bool        // a directory
	Mode os.FileMode // permission bits; default 0755 for directories and copies of executables, else 0644
	UID  int
	GID  int
}

// Build makes a one-layer image of entries with the given config, the way
// ko packages Go binaries: no Dockerfile, no Docker. Parent directories
// are added as needed.
func Build(entries []Entry, cfg v1.Config) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	written := map[string]bool{}
	var dirsOf func(p string) error
	dirsOf = func(p string) error {
		d := path.Dir(p)
		if d == "/" || d == "." || written[d] {
			return nil
		}
		if err := dirsOf(d); err != nil {
			return err
		}
		written[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755})
	}
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	for _, e := range sorted {
		if !path.IsAbs(e.Path) {
			return nil, fmt.Errorf("image entry %q: the path must be absolute", e.Path)
		}
		if err := dirsOf(e.Path); err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: strings.TrimPrefix(path.Clean(e.Path), "/"), Uid: e.UID, Gid: e.GID, Mode: tarMode(e.Mode)}
		var body []byte
		switch {
		case e.Dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
			if e.Mode == 0 {
				hdr.Mode = 0o755
			}
			written[path.Clean(e.Path)] = true
		case e.Link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.Link, 0o777
		case e.Src != "":
			b, err := os.ReadFile(e.Src)
			if err != nil {
				return nil, fmt.Errorf("image entry %s: %w", e.Path, err)
			}
			fi, err := os.Stat(e.Src)
			if err != nil {
				return nil, fmt.Errorf("image entry %s: %w", e.Path, err)
			}
			body = b
			if e.Mode == 0 {
				hdr.Mode = 0o644
				if fi.Mode()&0o111 != 0 {
					hdr.Mode = 0o755
				}
			}
		default:
			body = e.Data
			if e.Mode == 0 {
				hdr.Mode = 0o644
			}
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("image entry %s: %w", e.Path, err)
		}
		if _, err := tw.Write(body); err != nil {
			return nil, fmt.Errorf("image entry %s: %w", e.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("making the image's layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("adding the image's layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	return mutate.ConfigFile(img, cf)
}

// tarMode is a FileMode's permission and special bits as tar writes them.
func tarMode(m os.FileMode) int64 {
	mode := int64(m.Perm())
	for bit, tarBit := range map[os.FileMode]int64{os.ModeSetuid: 0o4000, os.ModeSetgid: 0o2000, os.ModeSticky: 0o1000} {
		if m&bit != 0 {
			mode |= tarBit
		}
	}
	return mode
}

// WriteArchive writes img as a `docker save` tarball tagged tag.
func WriteArchive(img v1.Image, tag, file string) error {
	t, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("image tag %q: %w", tag, err)
	}
	if err := tarball.WriteToFile(file, t, img); err != nil {
		return fmt.Errorf("writing the image %s to %s: %w", tag, file, err)
	}
	return nil
}
