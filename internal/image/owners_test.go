package image

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

const testBase = 0x70010000

func TestOwnersHost(t *testing.T) {
	shifted := Owners{HostBase: testBase, Size: 65536}
	for _, tc := range []struct {
		name             string
		o                Owners
		uid, gid         int
		wantUID, wantGID int
		err              bool
	}{
		{"image's own ids", Owners{}, 1000, 1000, 1000, 1000, false},
		{"image's own ids, above the map size", Owners{}, 70000, 0, 70000, 0, false},
		{"root", shifted, 0, 0, testBase, testBase, false},
		{"a user", shifted, 1000, 100, testBase + 1000, testBase + 100, false},
		{"nobody", shifted, 65534, 65534, testBase + 65534, testBase + 65534, false},
		{"the last id", shifted, 65535, 65535, testBase + 65535, testBase + 65535, false},
		{"uid beyond the map", shifted, 65536, 0, 0, 0, true},
		{"gid beyond the map", shifted, 0, 100000, 0, 0, true},
		{"negative", shifted, -1, 0, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid, gid, err := tc.o.host(tc.uid, tc.gid)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), "userns: false") {
					t.Errorf("host(%d, %d) = %d, %d, %v; want an error naming the fix", tc.uid, tc.gid, uid, gid, err)
				}
				return
			}
			if err != nil || uid != tc.wantUID || gid != tc.wantGID {
				t.Errorf("host(%d, %d) = %d, %d, %v; want %d, %d", tc.uid, tc.gid, uid, gid, err, tc.wantUID, tc.wantGID)
			}
		})
	}
	if got := (Owners{}).variantDir(); got != "rootfs" {
		t.Errorf("variantDir of the image's own ids = %q", got)
	}
	if got := shifted.variantDir(); got != "rootfs-1879113728" {
		t.Errorf("variantDir shifted = %q", got)
	}
}

// chownLog records the owners extract sets: no root needed.
type chownLog map[string][2]int

func (l chownLog) Lchown(name string, uid, gid int) error {
	l[name] = [2]int{uid, gid}
	return nil
}

func extractRecorded(t *testing.T, entries []Entry, o Owners) (chownLog, error) {
	t.Helper()
	img, err := Build(entries, v1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	rc := mutate.Extract(img)
	defer rc.Close()
	log := chownLog{}
	return log, extractInto(context.Background(), tar.NewReader(rc), root, o, log)
}

// TestExtractShiftsOwners: every entry, the image's root, its
// directories, files and symlinks, is owned at the map's base plus the
// image's id; an id the map cannot hold fails the unpack, naming the file.
func TestExtractShiftsOwners(t *testing.T) {
	entries := []Entry{
		{Path: "/etc/passwd", Data: []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n")},
		{Path: "/app", Dir: true, UID: 1000, GID: 1000},
		{Path: "/app/state", Data: []byte("x"), UID: 1000, GID: 1000},
		{Path: "/app/setuid", Data: []byte("x"), Mode: os.ModeSetuid | 0o755, UID: 0, GID: 0},
		{Path: "/home/nobody", Dir: true, UID: 65534, GID: 65534},
		{Path: "/bin/sh", Link: "busybox"},
	}
	for _, tc := range []struct {
		name string
		o    Owners
		base int
	}{
		{"without a user namespace", Owners{}, 0},
		{"in a cluster's map", Owners{HostBase: testBase, Size: 65536}, testBase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := extractRecorded(t, entries, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			for name, ids := range map[string][2]int{
				".": {0, 0}, "etc": {0, 0}, "etc/passwd": {0, 0},
				"app": {1000, 1000}, "app/state": {1000, 1000}, "app/setuid": {0, 0},
				"home/nobody": {65534, 65534}, "bin/sh": {0, 0},
			} {
				want := [2]int{tc.base + ids[0], tc.base + ids[1]}
				if have, ok := got[name]; !ok || have != want {
					t.Errorf("%s owned by %v (set: %t), want %v", name, have, ok, want)
				}
			}
		})
	}
	_, err := extractRecorded(t, []Entry{{Path: "/big", Data: []byte("x"), UID: 100000}}, Owners{HostBase: testBase, Size: 65536})
	if err == nil || !strings.Contains(err.Error(), "/big") || !strings.Contains(err.Error(), "userns: false") {
		t.Errorf("an owner beyond the map should fail naming the file and the fix: %v", err)
	}
}

// TestEnsureOwners: one image unpacked for containers without and with a
// user namespace is two trees beside one config; each is unpacked once,
// shared, found again without the source, and collected with the image.
func TestEnsureOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the shifted tree is chowned to the map's ids")
	}
	s, tarPath := tarballStore(t)
	ctx := context.Background()
	src := source(t, "docker-archive:"+tarPath)
	shifted := Owners{HostBase: testBase, Size: 65536}
	plain, err := s.Ensure(ctx, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mapped, err := s.Ensure(ctx, src, Options{Owners: shifted})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.Ensure(ctx, src, Options{Owners: shifted}); err != nil || again.RootFS != mapped.RootFS {
		t.Fatalf("a second Ensure = %q, %v; want %q", again.RootFS, err, mapped.RootFS)
	}
	if plain.Digest != mapped.Digest || filepath.Dir(plain.RootFS) != filepath.Dir(mapped.RootFS) || plain.RootFS == mapped.RootFS {
		t.Fatalf("two trees of one image beside one config, got %s and %s", plain.RootFS, mapped.RootFS)
	}
	if filepath.Base(mapped.RootFS) != "rootfs-1879113728" || DigestOfRootFS(mapped.RootFS) != mapped.Digest {
		t.Errorf("shifted tree %s, digest of it %q", mapped.RootFS, DigestOfRootFS(mapped.RootFS))
	}
	for _, tc := range []struct {
		tree, file string
		uid        int
	}{
		{plain.RootFS, ".", 0}, {plain.RootFS, "etc/passwd", 0}, {plain.RootFS, "app/run", 1000},
		{mapped.RootFS, ".", testBase}, {mapped.RootFS, "etc/passwd", testBase}, {mapped.RootFS, "app/run", testBase + 1000},
	} {
		if uid := fileUID(t, filepath.Join(tc.tree, tc.file)); uid != tc.uid {
			t.Errorf("%s/%s owned by %d, want %d", filepath.Base(tc.tree), tc.file, uid, tc.uid)
		}
	}
	if fi, err := os.Stat(filepath.Join(mapped.RootFS, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("the shifted /tmp should keep its mode 1777: %v %v", fi, err)
	}
	lines, err := s.Unpacks()
	if err != nil || len(lines) != 2 || strings.Fields(lines[0])[2] != "rootfs" || strings.Fields(lines[1])[2] != "rootfs-1879113728" {
		t.Fatalf("unpack log = %q, %v; want one unpack per tree", lines, err)
	}
	for _, o := range []Owners{{}, shifted} {
		if img, ok := s.Cached(src, o); !ok || filepath.Base(img.RootFS) != o.variantDir() {
			t.Errorf("Cached(%v) = %q, %t", o, img.RootFS, ok)
		}
	}
	if _, ok := s.Cached(src, Owners{HostBase: testBase + 65536, Size: 65536}); ok {
		t.Error("a tree never unpacked (another map) is not cached")
	}
	if removed, err := s.GC(nil); err != nil || len(removed) != 1 {
		t.Fatalf("GC = %v, %v", removed, err)
	}
	if _, err := os.Stat(filepath.Dir(mapped.RootFS)); !os.IsNotExist(err) {
		t.Errorf("the collected image's trees remain: %v", err)
	}
}
