package spec

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Where an image comes from, by the prefix of the service's image field
// (the transports of skopeo and podman):
//
//	registry.example:5000/shop/product:v1   a registry (default)
//	docker-archive:./product.tar            a `docker save` tarball
//	docker-archive:./all.tar:shop/product:v1  one image of a tarball with several
//	oci:./layout                            an OCI image layout directory
//	oci:./layout:v1                         its image tagged v1
const (
	ImageRegistry      = "registry"
	ImageDockerArchive = "docker-archive"
	ImageOCI           = "oci"
)

// ImageSource is a parsed image field.
type ImageSource struct {
	Transport string // ImageRegistry, ImageDockerArchive or ImageOCI
	Path      string // tarball or layout on disk (archive and oci); absolute after ApplyDefaults
	Ref       string // registry: the reference; archive: the image's tag in the tarball; oci: the tag of the layout's image ("" when it holds one)
}

// String writes the source back in the image field's syntax.
func (s ImageSource) String() string {
	if s.Transport == ImageRegistry {
		return s.Ref
	}
	if s.Ref == "" {
		return s.Transport + ":" + s.Path
	}
	return s.Transport + ":" + s.Path + ":" + s.Ref
}

// RegistryHost is the registry's host name without port, for registry
// sources ("" otherwise): a cluster service of that name is the cluster's
// own registry.
func (s ImageSource) RegistryHost() string {
	if s.Transport != ImageRegistry {
		return ""
	}
	ref, err := name.ParseReference(s.Ref)
	if err != nil {
		return ""
	}
	host := ref.Context().RegistryStr()
	if h, _, ok := strings.Cut(host, ":"); ok {
		return h
	}
	return host
}

// ParseImage parses the image field. It does no I/O: whether the file or
// the registry exists is for the agent to find out.
func ParseImage(s string) (ImageSource, error) {
	for _, t := range []string{ImageDockerArchive, ImageOCI} {
		rest, ok := strings.CutPrefix(s, t+":")
		if !ok {
			continue
		}
		path, ref, _ := strings.Cut(rest, ":")
		if path == "" {
			return ImageSource{}, fmt.Errorf("%s: needs a path after the colon, e.g. %s:./images/web.tar", t, t)
		}
		if t == ImageDockerArchive && ref != "" {
			if _, err := name.NewTag(ref); err != nil {
				return ImageSource{}, fmt.Errorf("%s: the image name %q after the path is not a valid tag (%v)", t, ref, err)
			}
		}
		return ImageSource{Transport: t, Path: path, Ref: ref}, nil
	}
	if _, err := name.ParseReference(s); err != nil {
		return ImageSource{}, fmt.Errorf("not an image reference (%v); write e.g. registry:5000/shop/web:v1, docker-archive:./web.tar or oci:./layout", err)
	}
	return ImageSource{Transport: ImageRegistry, Ref: s}, nil
}

// withDir makes a relative path of the source absolute, against the
// cluster file's directory.
func (s ImageSource) withDir(dir string) ImageSource {
	if s.Transport != ImageRegistry && dir != "" && !filepath.IsAbs(s.Path) {
		s.Path = filepath.Join(dir, s.Path)
	}
	return s
}
