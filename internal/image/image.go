// Package image owns the images of one host: it pulls them (from a
// registry, a `docker save` tarball or an OCI layout, all through
// go-containerregistry), unpacks each image once into a directory shared by
// every container of the host that runs it, remembers which digest a
// reference resolved to, and removes images no container uses (GC).
//
// The runtime mounts an unpacked image read-only as the lower layer of a
// container's root, with a writable layer of the container's own on top
// (internal/runtime/rootfs.go).
//
// Layout under Store.Root (naming.ImageDir):
//
//	<hex>/rootfs        the image's filesystem, flattened (whiteouts applied),
//	                    owned by the image's own ids
//	<hex>/rootfs-<base> the same, its owners shifted to host ids base.. for
//	                    containers in a user namespace with that map (Owners)
//	<hex>/config.json   the image's config file (entrypoint, cmd, env, ...)
//	refs/<sha256(ref)>  the digest a source last resolved to
//	unpack.log          one line per unpack: when, digest, source
//
// where <hex> is the hex of the image's manifest digest. An image is
// unpacked into a temporary directory and renamed into place, so a crash
// never leaves a half image behind a valid name. Each tree is unpacked
// once per host; every container of the host that runs the image with the
// same owners (every container of a cluster in its user namespace) shares
// it.
package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/weft-dev/weft/internal/spec"
)

const (
	rootfsDir   = "rootfs"
	configFile  = "config.json"
	refsDir     = "refs"
	unpackLog   = "unpack.log"
	tmpPrefix   = ".unpacking-"
	ociRefLabel = "org.opencontainers.image.ref.name"
)

// Store is one host's images. Use it by pointer; the zero value with Root
// set is ready.
type Store struct {
	Root string
	Log  *slog.Logger // default: discard
	// Transport is used for registries (default http.DefaultTransport).
	Transport http.RoundTripper

	mu    sync.Mutex
	locks map[string]*sync.Mutex // by source, so two containers of one image wait for one unpack
}

// Image is an unpacked image.
type Image struct {
	Digest string    // sha256:...
	RootFS string    // the image's filesystem with the owners asked for, to be mounted read-only
	Config v1.Config // entrypoint, cmd, env, workdir, user
}

// Options change how a registry source is reached.
type Options struct {
	// Registry, when set, replaces the registry host of the reference (the
	// cluster's own registry service, reached at a container's address);
	// it is then spoken to over plain HTTP.
	Registry string
	// Dial, when set, opens the registry's connections (from inside a lab
	// namespace: the agent's own cannot reach other hosts' containers).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Owners is how the image's files are owned on the host: shifted into
	// the user namespace of the containers that run it, or (zero) as the
	// image has them.
	Owners Owners
}

func (s *Store) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Store) lock(key string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks == nil {
		s.locks = map[string]*sync.Mutex{}
	}
	l, ok := s.locks[key]
	if !ok {
		l = &sync.Mutex{}
		s.locks[key] = l
	}
	return l
}

// Ensure returns the unpacked image of src, unpacking it first when this
// host has not yet. A source resolved before is not looked up again (the
// pull policy of compose's "missing"): a restarted agent, or one whose
// registry is down, still finds its images. ctx bounds the pull.
func (s *Store) Ensure(ctx context.Context, src spec.ImageSource, opts Options) (Image, error) {
	key := sourceKey(src)
	l := s.lock(key)
	l.Lock()
	defer l.Unlock()
	if img, ok := s.cached(key, opts.Owners); ok {
		return img, nil
	}
	remoteImg, err := s.fetch(ctx, src, opts)
	if err != nil {
		return Image{}, err
	}
	d, err := remoteImg.Digest()
	if err != nil {
		return Image{}, fmt.Errorf("image %s: reading its digest: %w", src, err)
	}
	img, err := s.open(d.String(), opts.Owners)
	if errors.Is(err, fs.ErrNotExist) {
		if err = s.unpack(ctx, src, d, remoteImg, opts.Owners); err == nil {
			img, err = s.open(d.String(), opts.Owners)
		}
	}
	if err != nil {
		return Image{}, err
	}
	if err := writeAtomic(filepath.Join(s.Root, refsDir), key, []byte(d.String()+"\n")); err != nil {
		return Image{}, fmt.Errorf("image %s: remembering its digest: %w", src, err)
	}
	return img, nil
}

// Cached returns the image src resolved to before, if it is still
// unpacked here with owners o; it needs no network (nor the address of the
// cluster's registry, which may be down or elsewhere now).
func (s *Store) Cached(src spec.ImageSource, o Owners) (Image, bool) {
	return s.cached(sourceKey(src), o)
}

func (s *Store) cached(key string, o Owners) (Image, bool) {
	digest, err := os.ReadFile(filepath.Join(s.Root, refsDir, key))
	if err != nil {
		return Image{}, false
	}
	img, err := s.open(strings.TrimSpace(string(digest)), o)
	return img, err == nil
}

// sourceKey names a source in refs/: the reference as the file writes it
// (the cluster's registry by its service name, wherever it runs).
func sourceKey(src spec.ImageSource) string {
	sum := sha256.Sum256([]byte(src.String()))
	return hex.EncodeToString(sum[:16])
}

// fetch opens the image of src (only its manifest and config are read
// here; layers are read while unpacking).
func (s *Store) fetch(ctx context.Context, src spec.ImageSource, opts Options) (v1.Image, error) {
	switch src.Transport {
	case spec.ImageDockerArchive:
		var tag *name.Tag
		if src.Ref != "" {
			t, err := name.NewTag(src.Ref)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", src, err)
			}
			tag = &t
		}
		img, err := tarball.ImageFromPath(src.Path, tag)
		if err != nil {
			return nil, fmt.Errorf("image %s: reading the docker save tarball: %w", src, err)
		}
		return img, nil
	case spec.ImageOCI:
		return ociImage(src)
	case spec.ImageRegistry:
		var nameOpts []name.Option
		ref := src.Ref
		if opts.Registry != "" {
			parsed, err := name.ParseReference(ref)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", src, err)
			}
			ref = opts.Registry + "/" + parsed.Context().RepositoryStr() + refSuffix(parsed)
			nameOpts = append(nameOpts, name.Insecure)
		}
		parsed, err := name.ParseReference(ref, nameOpts...)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", src, err)
		}
		rt := s.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		if opts.Dial != nil {
			rt = &http.Transport{DialContext: opts.Dial, DisableKeepAlives: true, ResponseHeaderTimeout: time.Minute}
		}
		img, err := remote.Image(parsed, remote.WithContext(ctx), remote.WithTransport(rt))
		if err != nil {
			return nil, fmt.Errorf("image %s: pulling from %s: %w", src, parsed.Context().RegistryStr(), err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("image %s: unknown source %q", src, src.Transport)
}

// refSuffix is ":tag" or "@digest" of a reference.
func refSuffix(r name.Reference) string {
	if d, ok := r.(name.Digest); ok {
		return "@" + d.DigestStr()
	}
	return ":" + r.Identifier()
}

// ociImage finds the image of an OCI layout: the one tagged src.Ref, or the
// only one.
func ociImage(src spec.ImageSource) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(src.Path)
	if err != nil {
		return nil, fmt.Errorf("image %s: reading the OCI layout: %w", src, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image %s: reading the OCI layout's index: %w", src, err)
	}
	var tags []string
	for _, desc := range m.Manifests {
		tag := desc.Annotations[ociRefLabel]
		tags = append(tags, tag)
		if src.Ref == "" && len(m.Manifests) == 1 || src.Ref != "" && tag == src.Ref {
			img, err := idx.Image(desc.Digest)
			if err != nil {
				return nil, fmt.Errorf("image %s: reading image %s of the layout (an index of several platforms is not supported): %w", src, desc.Digest, err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("image %s: the layout holds %d images tagged %q; name one as oci:PATH:TAG", src, len(m.Manifests), tags)
}

// open returns an image unpacked earlier with owners o, or an error
// wrapping fs.ErrNotExist.
func (s *Store) open(digest string, o Owners) (Image, error) {
	dir, err := s.dirOf(digest)
	if err != nil {
		return Image{}, err
	}
	rootfs := filepath.Join(dir, o.variantDir())
	if _, err := os.Stat(rootfs); err != nil {
		return Image{}, fmt.Errorf("image %s: %w", digest, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", digest, err)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return Image{}, fmt.Errorf("image %s: decoding its config: %w", digest, err)
	}
	return Image{Digest: digest, RootFS: rootfs, Config: cf.Config}, nil
}

func (s *Store) dirOf(digest string) (string, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return "", fmt.Errorf("image digest %q: %w", digest, err)
	}
	return filepath.Join(s.Root, h.Hex), nil
}

// Unpacks returns the lines of the unpack log: one per tree unpacked on
// this host, "time digest tree source", the tree "rootfs" (the image's
// own owners) or "rootfs-<host base>" (shifted, Owners).
func (s *Store) Unpacks() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(s.Root, unpackLog))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the unpack log: %w", err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n"), nil
}

func (s *Store) logUnpack(digest v1.Hash, tree string, src spec.ImageSource) error {
	f, err := os.OpenFile(filepath.Join(s.Root, unpackLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the unpack log: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s %s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), digest, tree, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the unpack log: %w", err)
	}
	return nil
}

// writeAtomic writes dir/name through a temporary file and a rename.
func writeAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+name+"-")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}
