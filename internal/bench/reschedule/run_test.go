package reschedule

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunOnce crashes host1 of one cluster and checks the report is
// complete: a figure per round, the median, the goal and Swarm's figure.
func TestRunOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (lab namespaces)")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	for name, pkg := range map[string]string{"weft": "./cmd/weft", "hello": "./examples/hello"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := Run(ctx, Options{Rounds: 1, Weft: filepath.Join(dir, "weft"), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + table.String())
	if len(r.Rows) != 4 || r.Rows[0][0] != "1" || r.Rows[1][0] != "median" || !strings.Contains(r.Rows[3][0], "Swarm") {
		t.Fatalf("rows: %v", r.Rows)
	}
	row := r.Rows[0]
	if len(row) != len(r.Columns) || row[4] == "0" || row[7] == "" || row[7] == "host1" {
		t.Errorf("round row incomplete or web-1 not moved off host1: %v", row)
	}
	for i, col := range []string{"host1 seen down", "web-1 moved", "served again"} {
		if v, err := strconv.ParseFloat(row[i+1], 64); err != nil || v <= 0 {
			t.Errorf("%s = %q: every step of the recovery must have been seen after the crash", col, row[i+1])
		}
	}
	served := r.Values["served_again_s"].([]float64)
	if len(served) != 1 || served[0] <= 0 {
		t.Errorf("served again after %v: a crash of web-1's host must cause an outage", served)
	}
	for _, key := range []string{"failed_share", "served_again_median_s", "swarm_node_down_s", "reschedule_after_s"} {
		if _, ok := r.Values[key]; !ok {
			t.Errorf("value %s missing", key)
		}
	}
	if r.Machine.CPUs == 0 || r.Started.IsZero() {
		t.Errorf("machine or start missing: %+v %s", r.Machine, r.Started)
	}
}
