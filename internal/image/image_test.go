package image

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/weft-dev/weft/internal/spec"
)

func testImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := Build([]Entry{
		{Path: "/etc/passwd", Data: []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")},
		{Path: "/app/run", Data: []byte("#!/bin/sh\necho hi\n"), Mode: 0o755, UID: 1000, GID: 1000},
		{Path: "/bin/sh", Link: "busybox"},
		{Path: "/tmp", Dir: true, Mode: os.ModeSticky | 0o777},
	}, v1.Config{Entrypoint: []string{"/app/run"}, Cmd: []string{"-v"}, User: "app", WorkingDir: "/app", Env: []string{"A=1"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func source(t *testing.T, s string) spec.ImageSource {
	t.Helper()
	src, err := spec.ParseImage(s)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// tarballStore writes the test image as a docker save tarball and gives
// an empty store beside it.
func tarballStore(t *testing.T) (s *Store, tarPath string) {
	t.Helper()
	dir := t.TempDir()
	tarPath = filepath.Join(dir, "app.tar")
	if err := WriteArchive(testImage(t), "shop/app:v1", tarPath); err != nil {
		t.Fatal(err)
	}
	return &Store{Root: filepath.Join(dir, "images")}, tarPath
}

func TestEnsureTarballUnpacksOnce(t *testing.T) {
	s, tarPath := tarballStore(t)
	ctx := context.Background()
	img, err := s.Ensure(ctx, source(t, "docker-archive:"+tarPath), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(img.Config.Entrypoint, " "); got != "/app/run" || img.Config.User != "app" || img.Config.WorkingDir != "/app" {
		t.Errorf("config = %+v", img.Config)
	}
	fi, err := os.Stat(filepath.Join(img.RootFS, "app/run"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("/app/run: %v %v", fi, err)
	}
	if os.Geteuid() == 0 {
		if uid := fileUID(t, filepath.Join(img.RootFS, "app/run")); uid != 1000 {
			t.Errorf("/app/run owned by %d, want 1000", uid)
		}
	}
	if fi, err := os.Stat(filepath.Join(img.RootFS, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("/tmp should keep its sticky bit: %v %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(img.RootFS, "bin/sh")); err != nil || target != "busybox" {
		t.Errorf("/bin/sh -> %q, %v", target, err)
	}
	// The same source, and the same image under another tag: no unpack.
	if _, err := s.Ensure(ctx, source(t, "docker-archive:"+tarPath), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ensure(ctx, source(t, "docker-archive:"+tarPath+":shop/app:v1"), Options{}); err != nil {
		t.Fatal(err)
	}
	lines, err := s.Unpacks()
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0], img.Digest) {
		t.Fatalf("unpack log = %q, %v; want one unpack of %s", lines, err, img.Digest)
	}

	removed, err := s.GC(map[string]bool{img.Digest: true})
	if err != nil || len(removed) != 0 {
		t.Fatalf("GC with the image kept removed %v, %v", removed, err)
	}
	removed, err = s.GC(nil)
	if err != nil || len(removed) != 1 || removed[0] != img.Digest {
		t.Fatalf("GC = %v, %v; want %s removed", removed, err, img.Digest)
	}
	if _, err := os.Stat(img.RootFS); !os.IsNotExist(err) {
		t.Errorf("the collected image's rootfs still exists: %v", err)
	}
	// Its reference went with it: the next Ensure unpacks again.
	if _, err := s.Ensure(ctx, source(t, "docker-archive:"+tarPath), Options{}); err != nil {
		t.Fatal(err)
	}
	if lines, _ := s.Unpacks(); len(lines) != 2 {
		t.Errorf("after GC, Ensure should unpack again: %q", lines)
	}
}

func TestEnsureOCILayout(t *testing.T) {
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(t)
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{ociRefLabel: "v1"})); err != nil {
		t.Fatal(err)
	}
	s := &Store{Root: filepath.Join(dir, "images")}
	want, _ := img.Digest()
	for _, ref := range []string{"oci:" + filepath.Join(dir, "layout"), "oci:" + filepath.Join(dir, "layout") + ":v1"} {
		got, err := s.Ensure(context.Background(), source(t, ref), Options{})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if got.Digest != want.String() {
			t.Errorf("%s: digest %s, want %s", ref, got.Digest, want)
		}
	}
	if _, err := s.Ensure(context.Background(), source(t, "oci:"+filepath.Join(dir, "layout")+":v2"), Options{}); err == nil || !strings.Contains(err.Error(), `"v1"`) {
		t.Errorf("a missing tag should name the tags there are: %v", err)
	}
}

// TestEnsureRegistry pulls through go-containerregistry's own registry,
// the one a cluster runs as a service, addressed the way the agent does:
// the reference names the service, Options.Registry its address.
func TestEnsureRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	img := mutateEnv(t, testImage(t))
	ref, err := name.ParseReference(u.Host + "/shop/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	s := &Store{Root: t.TempDir()}
	got, err := s.Ensure(context.Background(), source(t, "registry:5000/shop/app:v1"), Options{Registry: u.Host})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := img.Digest(); got.Digest != want.String() {
		t.Errorf("digest %s, want %s", got.Digest, want)
	}
	// A restarted agent finds it without the registry, wherever the
	// registry is now.
	srv.Close()
	s2 := &Store{Root: s.Root}
	if _, err := s2.Ensure(context.Background(), source(t, "registry:5000/shop/app:v1"), Options{Registry: "127.0.0.1:1"}); err != nil {
		t.Fatalf("an image pulled before should not need the registry: %v", err)
	}
	if img, ok := s2.Cached(source(t, "registry:5000/shop/app:v1"), Owners{}); !ok || img.Digest != got.Digest {
		t.Errorf("Cached = %v, %v", img.Digest, ok)
	}
	if _, ok := s2.Cached(source(t, "registry:5000/shop/app:v2"), Owners{}); ok {
		t.Error("a reference never pulled is not cached")
	}
}

func mutateEnv(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	out, err := mutate.Config(img, v1.Config{Env: []string{"FROM_REGISTRY=1"}, Entrypoint: []string{"/app/run"}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExtractRefusesEscapes(t *testing.T) {
	dir := t.TempDir()
	img, err := Build([]Entry{
		{Path: "/evil", Link: "/"},
		{Path: "/ok", Data: []byte("x")},
	}, v1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "a.tar")
	if err := WriteArchive(img, "x/y:z", tarPath); err != nil {
		t.Fatal(err)
	}
	s := &Store{Root: filepath.Join(dir, "images")}
	got, err := s.Ensure(context.Background(), source(t, "docker-archive:"+tarPath), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The symlink is kept as it is (it means / of the container), never followed.
	if target, _ := os.Readlink(filepath.Join(got.RootFS, "evil")); target != "/" {
		t.Errorf("evil -> %q", target)
	}
}
