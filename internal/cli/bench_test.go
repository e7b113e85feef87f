package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestBenchInterruptedLetsWeftBenchCleanUp: when weft bench is interrupted,
// weft-bench gets SIGTERM (not SIGKILL), so it can remove its cluster before
// it exits.
func TestBenchInterruptedLetsWeftBenchCleanUp(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "weft")
	cleaned := filepath.Join(dir, "cleaned")
	started := filepath.Join(dir, "started")
	fake := "#!/bin/sh\ntrap 'echo done > " + cleaned + "; exit 4' TERM\ntouch " + started + "\nwhile :; do sleep 0.05; done\n"
	if err := os.WriteFile(filepath.Join(dir, benchBinary), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := &globals{stateRoot: dir, stdout: io.Discard, stderr: io.Discard}
	done := make(chan error, 1)
	go func() { done <- runBench(ctx, g, self, []string{"up"}) }()
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("weft-bench ended before it was interrupted: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	err := <-done
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 4 {
		t.Errorf("interrupted: %v, want weft-bench's own exit status 4 after its cleanup", err)
	}
	if b, rerr := os.ReadFile(cleaned); rerr != nil || string(b) != "done\n" {
		t.Errorf("weft-bench did not run its cleanup on SIGTERM: %v %q", rerr, b)
	}
}
