package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/weft-dev/weft/internal/image"
	"github.com/weft-dev/weft/internal/naming"
)

// staticHello builds the hello example without cgo: an image has no libc.
func staticHello(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command("go", "build", "-o", bin, "./examples/hello")
	cmd.Dir, cmd.Env = repoDir, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a static hello: %v\n%s", err, out)
	}
	return bin
}

// helloImage writes a `docker save` tarball of an image that holds a
// static busybox, the hello server, and an /etc of its own; its
// entrypoint is hello, run as user app (uid 1000) in /app.
func helloImage(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs a static /bin/busybox (busybox-static, scripts/install-deps.sh)")
	}
	entries := []image.Entry{
		{Path: "/bin/busybox", Src: "/bin/busybox"},
		{Path: "/app/hello", Src: staticHello(t)},
		{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/app:/bin/sh\n")},
		{Path: "/etc/group", Data: []byte("root:x:0:\napp:x:1000:\n")},
		{Path: "/etc/image-marker", Data: []byte("from the image\n")},
	}
	for _, applet := range []string{"sh", "cat", "id", "test", "grep", "wget", "ls"} {
		entries = append(entries, image.Entry{Path: "/bin/" + applet, Link: "busybox"})
	}
	img, err := image.Build(entries, v1.Config{
		Entrypoint: []string{"/app/hello"},
		Cmd:        []string{"-listen", ":8080", "-name", "img"},
		User:       "app",
		WorkingDir: "/app",
		Env:        []string{"PATH=/bin", "GREETING=from-image"},
	})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "hello.tar")
	if err := image.WriteArchive(img, "weft-test/hello:v1", file); err != nil {
		t.Fatal(err)
	}
	return file
}

const imageTmpl = `version: 1
name: NAME
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a}
services:
  web:
    image: docker-archive:TARBALL
    replicas: 2
    port: 8080
    health: {http: /health, interval: 200ms}
`

// TestImageFromTarball: a service of an image from a docker save tarball
// runs the image's entrypoint as the image's user, sees the image's /etc
// and none of the host's files; its second container starts from the
// same unpacked image (the unpack log has one line); once no container
// runs the image, it is collected.
func TestImageFromTarball(t *testing.T) {
	tarball := helloImage(t)
	c := writeCluster(t, uniqueName("img-"), strings.ReplaceAll(imageTmpl, "TARBALL", tarball))
	upCluster(t, c) // returns once both are healthy: the entrypoint serves
	for _, ct := range []string{"web-1", "web-2"} {
		r := c.exec(t, ct, "sh", "-c", `
			cat /etc/image-marker
			for p in /etc/debian_version /usr/bin /var/lib/weft /root; do test -e "$p" && echo "visible $p"; done
			for p in /proc/[0-9]*; do grep -q /app/hello $p/cmdline 2>/dev/null && grep -E '^Uid:' $p/status; done
			echo done`)
		if r.code != 0 {
			t.Fatalf("weft exec %s: exit %d: %s%s", ct, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "visible") {
			t.Errorf("%s sees the host's files:\n%s", ct, r.stdout)
		}
		for _, want := range []string{"from the image", "Uid:\t1000\t1000\t1000\t1000", "done"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%s: output lacks %q:\n%s", ct, want, r.stdout)
			}
		}
	}
	store := &image.Store{Root: naming.ImageDir(naming.DefaultStateRoot, c.name, "host1")}
	lines, err := store.Unpacks()
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 {
		t.Fatalf("two containers of one image on one host unpacked it %d times:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	digest := strings.Fields(lines[0])[1]
	rootfs := filepath.Join(store.Root, strings.TrimPrefix(digest, "sha256:"))
	if _, err := os.Stat(rootfs); err != nil {
		t.Fatalf("the unpacked image: %v", err)
	}

	// The service becomes a host binary: the image is no longer used.
	c.rewrite(t, strings.ReplaceAll(imageTmpl, "image: docker-archive:TARBALL", "command: [HELLO, -listen, \":8080\", -name, web]"))
	mustWeft(t, "up", "-f", c.file)
	eventually(t, 30*time.Second, "the unused image to be collected", func() error {
		if _, err := os.Stat(rootfs); err == nil {
			return fmt.Errorf("%s still exists", rootfs)
		}
		return nil
	})
}

// buildShopImages runs `make build`'s scripts/build-images.sh for the
// binaries of this run: the shop's image lands in images/ beside weftBin,
// where `weft registry --seed images` finds it. It returns that tarball.
func buildShopImages(t *testing.T) string {
	t.Helper()
	build := exec.Command("scripts/build-images.sh", filepath.Dir(weftBin))
	build.Dir = repoDir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-images.sh: %v\n%s", err, out)
	}
	return filepath.Join(filepath.Dir(weftBin), "images", "shop.tar")
}
