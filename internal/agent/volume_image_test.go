package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookupOwnerInImage(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	for owner, want := range map[string][2]int{"app": {1000, 1001}, "app:staff": {1000, 50}, "7:8": {7, 8}, "9": {9, 9}} {
		uid, gid, err := lookupOwnerInImage(root, owner)
		if err != nil || uid != want[0] || gid != want[1] {
			t.Errorf("%s: %d:%d %v, want %v", owner, uid, gid, err, want)
		}
	}
	if _, _, err := lookupOwnerInImage(root, "nobody"); err == nil || !strings.Contains(err.Error(), "numeric") {
		t.Errorf("an unknown user: %v", err)
	}
}
