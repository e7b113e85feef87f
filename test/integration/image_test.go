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
	"github.com/weft-dev/weft/internal/runtime"
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
// static busybox, the hello server, an /etc of its own and a file of user
// app (/app/state); its entrypoint is hello, run as user app (uid 1000)
// in /app.
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
		{Path: "/app/state", Data: []byte("app's\n"), UID: 1000, GID: 1000},
	}
	for _, applet := range []string{"sh", "cat", "id", "test", "grep", "wget", "ls", "stat"} {
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
  plain:
    image: docker-archive:TARBALL
    userns: false
    port: 8080
    health: {http: /health, interval: 200ms}
`

// TestImageFromTarball: a service of an image from a docker save tarball
// runs the image's entrypoint as the image's user, sees the image's /etc
// (root's) and its user's files (app's, writable by it) and none of the
// host's files. By default it runs in the cluster's user namespace: its
// uid_map is the cluster's, and on the host its workload is the mapped
// uid of app, not 1000; with `userns: false` (plain) it sees the same
// owners without one. Its second container starts from the same unpacked
// image (the unpack log has one line per tree: the shifted one, shared
// by web-1 and web-2, and plain's); once no container runs the image, it
// is collected.
func TestImageFromTarball(t *testing.T) {
	tarball := helloImage(t)
	c := writeCluster(t, uniqueName("img-"), strings.ReplaceAll(imageTmpl, "TARBALL", tarball))
	upCluster(t, c) // returns once all are healthy: the entrypoint serves
	m := runtime.ClusterIDMap(c.name)
	pids := map[string]int{}
	for _, s := range c.status(t).Containers {
		pids[s.Container] = s.Pid
	}
	for _, tc := range []struct {
		container, uidMap string
		hostUID           int
	}{
		{"web-1", m.String(), int(m.HostBase) + 1000},
		{"web-2", m.String(), int(m.HostBase) + 1000},
		{"plain-1", "0 0 4294967295", 1000},
	} {
		ct := tc.container
		r := c.exec(t, ct, "sh", "-c", `
			cat /etc/image-marker
			for p in /etc/debian_version /usr/bin /var/lib/weft /root; do test -e "$p" && echo "visible $p"; done
			for p in /proc/[0-9]*; do grep -q /app/hello $p/cmdline 2>/dev/null && grep -E '^Uid:' $p/status; done
			set -- $(cat /proc/self/uid_map); echo "map: $1 $2 $3"
			stat -c 'owner %n %u:%g' / /etc/passwd /app/state
			echo more >> /app/state && echo appended
			echo done`)
		if r.code != 0 {
			t.Fatalf("weft exec %s: exit %d: %s%s", ct, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "visible") {
			t.Errorf("%s sees the host's files:\n%s", ct, r.stdout)
		}
		for _, want := range []string{"from the image", "Uid:\t1000\t1000\t1000\t1000", "map: " + tc.uidMap + "\n",
			"owner / 0:0", "owner /etc/passwd 0:0", "owner /app/state 1000:1000", "appended", "done"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%s: output lacks %q:\n%s", ct, want, r.stdout)
			}
		}
		// The host's view of the workload: its map, and its uid there.
		uidMap, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pids[ct]))
		if err != nil {
			t.Fatalf("%s: %v", ct, err)
		}
		if got := strings.Join(strings.Fields(string(uidMap)), " "); got != tc.uidMap {
			t.Errorf("%s on the host: uid_map %q, want %q", ct, got, tc.uidMap)
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pids[ct]))
		if err != nil || !strings.Contains(string(status), fmt.Sprintf("\nUid:\t%d\t%d\t", tc.hostUID, tc.hostUID)) {
			t.Errorf("%s (pid %d) on the host should run as uid %d: %v\n%s", ct, pids[ct], tc.hostUID, err, status)
		}
	}
	store := &image.Store{Root: naming.ImageDir(naming.DefaultStateRoot, c.name, "host1")}
	lines, err := store.Unpacks()
	if err != nil {
		t.Fatal(err)
	}
	trees := map[string]int{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 4 {
			trees[f[2]]++
		}
	}
	shifted := fmt.Sprintf("rootfs-%d", m.HostBase)
	if len(lines) != 2 || trees[shifted] != 1 || trees["rootfs"] != 1 {
		t.Fatalf("web-1 and web-2 should share one tree of the image in the cluster's map (%s), plain one of its own ids (rootfs), each unpacked once:\n%s", shifted, strings.Join(lines, "\n"))
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
