package failover

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/naming"
)

// binaries are the repository's bin/weft and bin/hello (make build), built
// into the test's folder when missing.
func binaries(t *testing.T) (weft, hello string) {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "bin")
	if _, err := os.Stat(filepath.Join(dir, "weft")); err != nil {
		dir = t.TempDir()
	}
	for name, pkg := range map[string]string{"weft": "./cmd/weft", "hello": "./examples/hello"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			continue
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
	}
	return filepath.Join(dir, "weft"), filepath.Join(dir, "hello")
}

func benchNamespaces(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "weft.bf") {
			names = append(names, e.Name())
		}
	}
	return names
}

// keepaliveds lists keepalived processes this test could have left behind:
// its children and orphans.
func keepaliveds() []string {
	out, _ := exec.Command("pgrep", "-x", "-P", fmt.Sprintf("1,%d", os.Getpid()), "keepalived").Output()
	return strings.Fields(string(out))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestRunTwoFailoversEach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates network namespaces")
	}
	if _, err := keepalivedBinary(); err != nil {
		t.Skip(err)
	}
	weft, hello := binaries(t)
	before, kaBefore := benchNamespaces(t), keepaliveds()
	t.Cleanup(func() {
		for _, n := range benchNamespaces(t) {
			if !slices.Contains(before, n) {
				t.Errorf("namespace left behind: %s", n)
				_ = exec.Command(weft, "down", "--cluster", strings.Split(n, ".")[1]).Run()
			}
		}
		if now := keepaliveds(); len(now) > len(kaBefore) {
			t.Errorf("keepalived processes left behind: %v (before: %v)", now, kaBefore)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r, err := Run(ctx, Options{Failovers: 2, Keepalived: true, Weft: weft, Hello: hello, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if len(r.Rows) != 2 || r.Rows[0][0] != "weft" || r.Rows[1][0] != "keepalived" {
		t.Fatalf("rows = %v, want weft and keepalived", r.Rows)
	}
	for _, row := range r.Rows {
		if len(row) != len(columns) {
			t.Errorf("row %v has %d cells, want %d", row, len(row), len(columns))
		}
	}
	for _, sys := range []string{"weft", "keepalived"} {
		if got := r.Values[sys+"_recovered"]; got != 2 {
			t.Errorf("%s recovered from %v of 2 crashes", sys, got)
		}
		if p50, _ := r.Values[sys+"_first_ok_p50_ms"].(float64); p50 <= 0 {
			t.Errorf("%s: time to first success %v, want > 0", sys, p50)
		}
	}
	if got := r.Values["weft_two_holders_reachable"]; got != 0 {
		t.Errorf("weft had %v instants with two reachable holders, want 0", got)
	}
	if got := r.Values["weft_two_holders_believed"]; got != 0 {
		t.Errorf("weft had %v instants with two hosts delivering, want 0 (the kernel fence)", got)
	}
	w, k := r.Values["weft_first_ok_p50_ms"].(float64), r.Values["keepalived_first_ok_p50_ms"].(float64)
	if ratio := r.Values["keepalived_over_weft_p50"].(float64); ratio != k/w {
		t.Errorf("ratio %v is not %v / %v", ratio, k, w)
	}
	// The cgroups of the keepalived instances went with them.
	for _, h := range []string{"h1", "h2"} {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/pids", naming.CgroupRelPath("bf*", h, "keepalived")))
		if len(matches) > 0 {
			t.Errorf("keepalived cgroups left behind: %v", matches)
		}
	}
}
