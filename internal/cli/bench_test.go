package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchRunsWeftBench: weft bench runs the weft-bench beside weft with
// every argument, the weft binary and the state root, and exits with its
// status; without one it says to run make build.
func TestBenchRunsWeftBench(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "weft")
	var out, errb strings.Builder
	g := &globals{stateRoot: "/var/lib/weft-test", stdout: &out, stderr: &errb}

	err := runBench(context.Background(), g, self, []string{"overlay"})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "run make build") {
		t.Fatalf("without weft-bench: %v, want exit 1 saying to run make build", err)
	}

	fake := "#!/bin/sh\necho \"$@\"\necho \"state $WEFT_STATE_ROOT\"\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, benchBinary), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	err = runBench(context.Background(), g, self, []string{"overlay", "--rounds", "2"})
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Fatalf("weft-bench exiting 3: %v, want exit 3", err)
	}
	want := "--weft " + self + " overlay --rounds 2\nstate /var/lib/weft-test\n"
	if out.String() != want {
		t.Errorf("weft-bench was run as %q, want %q", out.String(), want)
	}
}
