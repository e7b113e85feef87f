package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/model"
)

// busyboxImage makes an unpacked image directory (as internal/image
// leaves one): a static busybox with its applets, an /etc of its own
// with a user app (uid 1000), and a file that marks the image.
func busyboxImage(t testing.TB) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs a static /bin/busybox (Debian's busybox-static, scripts/install-deps.sh)")
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "home/app", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "id", "cat", "touch", "sleep", "ls", "pwd", "stat", "tr", "sed"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd":       "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
		"etc/group":        "root:x:0:\napp:x:1000:\n",
		"etc/image-marker": "from the image\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "home/app"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	// A symlink planted where weft mounts a file is replaced, not followed.
	if err := os.Symlink("/etc/shadow", filepath.Join(dir, "etc/hosts")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestImageRoot: a container of an image sees the image's /etc, not the
// host's; it runs as the image's user (looked up in the image's
// /etc/passwd) in the image's workdir; it writes into its own layer, and
// the image stays as it was. Both kinds of writable layer, without and
// with a user namespace: with one, the image's files are owned in the map
// on the host (as internal/image unpacks them) and the container sees the
// image's own owners (root's /etc and /, the user's home), while on the
// host its workload is the mapped uid.
func TestImageRoot(t *testing.T) {
	for _, kind := range []string{layerOverlay, layerCopy} {
		for _, userns := range []bool{false, true} {
			t.Run(kind+map[bool]string{false: "", true: "-userns"}[userns], func(t *testing.T) { testImageRoot(t, kind, userns) })
		}
	}
}

func testImageRoot(t *testing.T, kind string, userns bool) {
	l := newLab(t)
	img := busyboxImage(t)
	var m IDMap
	wantMap := "0 0 4294967295"
	if userns {
		m = ClusterIDMap(l.cluster)
		wantMap = m.String()
		if err := ShiftOwnership(img, identityIDs, m); err != nil {
			t.Fatal(err)
		}
	}
	cfg := l.config("img-1", "sh", "-c", `
				cat /etc/image-marker
				test -e /etc/debian_version && echo "visible host /etc"
				test -e /usr/bin/apt && echo "visible host /usr"
				echo "uid=$(id -u) home=$HOME pwd=$(pwd)"
				echo "map: $(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')"
				stat -c 'owner %n %u:%g' / /etc/passwd /home/app
				touch /home/app/written && echo wrote
				cat /etc/hosts
				echo done; exec sleep 1000`)
	cfg.Image = img
	cfg.User = "app"
	cfg.Workdir = "/home/app"
	cfg.Hosts = "127.0.0.1\tlocalhost img-1\n"
	cfg.forceCopy = kind == layerCopy
	cfg.UserNS = m
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the container's log:\n%s", l.log("img-1"))
		}
	})
	pid := l.supervise(cfg).events.next(t, model.StateRunning).Pid
	waitFor(t, "the checks to finish", l.logContains("img-1", "done"))
	out := l.log("img-1")
	for _, want := range []string{"from the image", "uid=1000 home=/home/app pwd=/home/app", "map: " + wantMap + "\n",
		"owner / 0:0", "owner /etc/passwd 0:0", "owner /home/app 1000:1000", "wrote", "localhost img-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "visible") {
		t.Errorf("the host's files are visible in the image's root:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(img, "home/app/written")); err == nil {
		t.Error("the container wrote into the shared image instead of its own layer")
	}
	if target, err := os.Readlink(filepath.Join(img, "etc/hosts")); err != nil || target != "/etc/shadow" {
		t.Errorf("the image's own /etc/hosts symlink changed: %q %v", target, err)
	}
	dir := l.rt.dir(l.cluster, l.host, "img-1")
	got, err := os.ReadFile(filepath.Join(dir, layerPrefix+cfg.Hash(), layerKind))
	if err != nil || strings.TrimSpace(string(got)) != kind {
		t.Errorf("layer kind = %q, %v; want %s", got, err, kind)
	}
	wantUID, _, _ := HostIDs(m, 1000, 1000)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil || !strings.Contains(string(status), fmt.Sprintf("\nUid:\t%d\t", wantUID)) {
		t.Errorf("the workload (pid %d) on the host should be uid %d: %v\n%s", pid, wantUID, err, status)
	}
}

func TestKernelHasOverlay(t *testing.T) {
	for in, want := range map[string]bool{
		"nodev\tsysfs\nnodev\toverlay\n\text4\n": true,
		"nodev\tsysfs\n\text4\n":                 false,
		"":                                       false,
	} {
		if got := kernelHasOverlay(in); got != want {
			t.Errorf("kernelHasOverlay(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestImageOwnedFor: a container starts only from an image tree owned for
// its map (internal/image unpacks one per map): the image's own ids
// without a user namespace, the map's with one.
func TestImageOwnedFor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the tree is chowned to a map's ids")
	}
	m := IDMap{HostBase: 0x70010000, Size: IDMapSize}
	plain, mapped := t.TempDir(), t.TempDir()
	if err := os.Lchown(mapped, int(m.HostBase), int(m.HostBase)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		image string
		m     IDMap
		ok    bool
	}{
		{"image's ids, no user namespace", plain, IDMap{}, true},
		{"shifted, in the map", mapped, m, true},
		{"image's ids in a user namespace", plain, m, false},
		{"shifted, without a user namespace", mapped, IDMap{}, false},
		{"shifted for another map", mapped, IDMap{HostBase: 0x70020000, Size: IDMapSize}, false},
	} {
		err := imageOwnedFor(tc.image, tc.m)
		if (err == nil) != tc.ok {
			t.Errorf("%s: imageOwnedFor = %v, want ok %t", tc.name, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "Owners") {
			t.Errorf("%s: the error should say how to fix it: %v", tc.name, err)
		}
	}
}
