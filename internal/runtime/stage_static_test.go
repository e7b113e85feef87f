package runtime

import (
	"os"
	"strings"
	"testing"
)

// TestStaticBinary: a binary with an ELF interpreter cannot be the userns
// stage in an image's root, and the error says how to build weft; a
// static one can.
func TestStaticBinary(t *testing.T) {
	for _, tc := range []struct {
		path   string
		static bool
	}{
		{"/bin/busybox", true}, // busybox-static (scripts/install-deps.sh)
		{"/usr/bin/env", false},
	} {
		if _, err := os.Stat(tc.path); err != nil {
			t.Logf("skipping %s: %v", tc.path, err)
			continue
		}
		err := staticBinary(tc.path)
		if tc.static && err != nil {
			t.Errorf("%s: %v; want static", tc.path, err)
		}
		if !tc.static && (err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0")) {
			t.Errorf("%s: %v; want an error naming CGO_ENABLED=0", tc.path, err)
		}
	}
	if err := staticBinary("/nonexistent/weft"); err == nil {
		t.Error("a missing binary should be an error")
	}
}
