package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestClusterIDMap(t *testing.T) {
	seen := map[uint32]string{}
	for i := range 200 {
		name := fmt.Sprintf("cluster-%d", i)
		m := ClusterIDMap(name)
		if m != ClusterIDMap(name) {
			t.Fatalf("%s: not deterministic", name)
		}
		if m.Size != IDMapSize {
			t.Errorf("%s: size %d, want %d", name, m.Size, IDMapSize)
		}
		// Above every login, system, dynamic and nspawn id, below
		// systemd's foreign range and 2^31, aligned to the size.
		if m.HostBase < 0x70000000 || uint64(m.HostBase)+uint64(m.Size) > 0x7FFE0000 || m.HostBase%IDMapSize != 0 {
			t.Errorf("%s: range %d..%d is outside 0x70000000..0x7FFE0000 or unaligned", name, m.HostBase, m.HostBase+m.Size)
		}
		seen[m.HostBase] = name
	}
	if len(seen) < 190 {
		t.Errorf("200 cluster names got only %d distinct ranges", len(seen))
	}
	if ClusterIDMap("a") == ClusterIDMap("b") {
		t.Error("clusters a and b share a range")
	}
}

func TestIDMapTranslation(t *testing.T) {
	m := IDMap{HostBase: 0x70010000, Size: IDMapSize}
	for _, tc := range []struct {
		in   uint32
		host uint32
		ok   bool
	}{{0, 0x70010000, true}, {999, 0x70010000 + 999, true}, {65535, 0x7001FFFF, true}, {65536, 0, false}} {
		h, ok := m.ToHost(tc.in)
		if ok != tc.ok || (ok && h != tc.host) {
			t.Errorf("ToHost(%d) = %d, %t; want %d, %t", tc.in, h, ok, tc.host, tc.ok)
		}
		if ok {
			if back, ok := m.FromHost(h); !ok || back != tc.in {
				t.Errorf("FromHost(%d) = %d, %t; want %d", h, back, ok, tc.in)
			}
		}
	}
	for _, h := range []uint32{0, 999, 0x7000FFFF, 0x70020000} {
		if _, ok := m.FromHost(h); ok {
			t.Errorf("FromHost(%d) should be unmapped", h)
		}
	}
	if m.String() != "0 1879113728 65536" {
		t.Errorf("String = %q", m.String())
	}
	if u, g, err := HostIDs(m, 999, 999); err != nil || u != 0x70010000+999 || g != u {
		t.Errorf("HostIDs(999) = %d, %d, %v", u, g, err)
	}
	if _, _, err := HostIDs(m, 70000, 0); err == nil {
		t.Error("HostIDs of an id above the map should fail")
	}
	if u, g, err := HostIDs(IDMap{}, 999, 5); err != nil || u != 999 || g != 5 {
		t.Errorf("HostIDs without a map = %d, %d, %v; want the ids themselves", u, g, err)
	}
	// shift: into the map, back out, ids elsewhere kept.
	for _, tc := range []struct {
		id       uint32
		from, to IDMap
		want     uint32
		moved    bool
	}{
		{0, identityIDs, m, 0x70010000, true},
		{999, identityIDs, m, 0x70010000 + 999, true},
		{70000, identityIDs, m, 70000, false},
		{0x70010000 + 5, m, identityIDs, 5, true},
		{0x70010000 + 5, identityIDs, m, 0x70010000 + 5, false},
	} {
		if got, moved := shift(tc.id, tc.from, tc.to); got != tc.want || moved != tc.moved {
			t.Errorf("shift(%d, %v, %v) = %d, %t; want %d, %t", tc.id, tc.from, tc.to, got, moved, tc.want, tc.moved)
		}
	}
}

func TestParseIDMap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want IDMap
		err  bool
	}{
		{"0 0 4294967295", IDMap{}, false},
		{"0 1879113728 65536", IDMap{HostBase: 1879113728, Size: 65536}, false},
		{"         0 1879113728      65536", IDMap{HostBase: 1879113728, Size: 65536}, false},
		{"1 1879113728 65536", IDMap{}, true},
		{"0 1879113728 70000", IDMap{}, true},
		{"0 4294967295 2", IDMap{}, true},
		{"garbage", IDMap{}, true},
	} {
		got, err := parseIDMap(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseIDMap(%q) = %v, %v; want %v, error %t", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestOwnVolume shifts a volume's tree into a map and back (root: chown).
func TestOwnVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	dir := filepath.Join(t.TempDir(), "vol")
	sub := filepath.Join(dir, "pgdata")
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(sub, "PG_VERSION")
	if err := os.WriteFile(file, []byte("15\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("/etc/passwd", link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, sub, file} {
		if err := os.Lchown(p, 999, 999); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(file, 0o755|os.ModeSetuid); err != nil { // after chown, which clears it
		t.Fatal(err)
	}
	if err := os.Lchown(link, 70000, 70000); err != nil { // outside both ranges: kept
		t.Fatal(err)
	}
	owner := func(p string) (uint32, uint32, uint32) {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Uid, st.Gid, st.Mode
	}
	const cluster = "un-vol"
	m := ClusterIDMap(cluster)
	if err := OwnVolume(dir, m, cluster); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, sub, file} {
		if u, g, _ := owner(p); u != m.HostBase+999 || g != m.HostBase+999 {
			t.Errorf("%s owned by %d:%d after the shift, want %d", p, u, g, m.HostBase+999)
		}
	}
	if _, _, mode := owner(file); mode&syscall.S_ISUID == 0 {
		t.Error("the shift lost the set-user-ID bit")
	}
	if u, _, _ := owner(link); u != 70000 {
		t.Errorf("an id outside the ranges moved to %d", u)
	}
	if u, _, _ := owner("/etc/passwd"); u != 0 {
		t.Errorf("the symlink was followed: /etc/passwd owned by %d", u)
	}
	// In range already: nothing to do.
	if need, err := NeedsShift(dir, m); err != nil || need {
		t.Errorf("NeedsShift after the shift = %t, %v", need, err)
	}
	// Turned off: back to the host's ids.
	if err := OwnVolume(dir, IDMap{}, cluster); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, sub, file} {
		if u, g, _ := owner(p); u != 999 || g != 999 {
			t.Errorf("%s owned by %d:%d after the shift back, want 999", p, u, g)
		}
	}
}
