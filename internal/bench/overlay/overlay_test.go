package overlay

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

	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
	"github.com/weft-dev/weft/internal/bench/report"
)

// weftBinary is the repository's bin/weft (make build), built into the
// test's folder when missing.
func weftBinary(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", "weft")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	bin = filepath.Join(t.TempDir(), "weft")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/weft")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building weft: %v\n%s", err, out)
	}
	return bin
}

func netnsNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// pids lists the processes named name that this test's run could have left
// behind: its own children and orphans. Those of another run on the same
// machine (a benchmark in another shell) have a parent of their own.
func pids(t *testing.T, name string) []string {
	t.Helper()
	out, _ := exec.Command("pgrep", "-x", "-P", fmt.Sprintf("1,%d", os.Getpid()), name).Output()
	return strings.Fields(string(out))
}

// leftovers removes, after a failed run, whatever namespaces of its own kinds
// appeared during the test, and reports them.
func leftovers(t *testing.T, weft string, before []string) []string {
	t.Helper()
	var left []string
	for _, n := range netnsNames(t) {
		if slices.Contains(before, n) {
			continue
		}
		switch {
		case strings.HasPrefix(n, "weft.bo"), strings.HasPrefix(n, "weft.bn"):
			cluster := strings.Split(n, ".")[1]
			_ = exec.Command(weft, "down", "--cluster", cluster).Run()
			left = append(left, n)
		case strings.HasPrefix(n, "weftref-"):
			_ = exec.Command("ip", "netns", "del", n).Run()
			left = append(left, n)
		}
	}
	return left
}

func TestRunThreeHosts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates network namespaces")
	}
	weft := weftBinary(t)
	tools := []string{"builtin"}
	if _, err := exec.LookPath("iperf3"); err == nil {
		tools = append([]string{"iperf3"}, tools...)
	} else {
		t.Log("iperf3 is not installed: only the built-in load is tested")
	}
	for _, tool := range tools {
		t.Run(tool, func(t *testing.T) {
			before := netnsNames(t)
			iperfBefore := pids(t, "iperf3")
			t.Cleanup(func() {
				if left := leftovers(t, weft, before); len(left) > 0 {
					t.Errorf("namespaces left behind (now removed): %v", left)
				}
				if now := pids(t, "iperf3"); len(now) > len(iperfBefore) {
					t.Errorf("iperf3 processes left behind: %v (before: %v)", now, iperfBefore)
				}
			})
			var logs bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			r, err := Run(ctx, Options{
				Duration: time.Second, Rounds: 2, Streams: []int{1, 4}, Hosts: 3,
				Weft: weft, Tool: tool, Log: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatalf("Run: %v\nlog:\n%s", err, logs.String())
			}
			var table bytes.Buffer
			if err := r.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", table.String())
			checkReport(t, r, []int{1, 4})
			if !strings.Contains(r.Tool, map[string]string{"iperf3": "iperf3 3.", "builtin": "built-in Go TCP streams"}[tool]) {
				t.Errorf("Tool = %q does not name the %s load", r.Tool, tool)
			}
			if left := leftovers(t, weft, before); len(left) > 0 {
				t.Errorf("Run left namespaces behind: %v", left)
			}
		})
	}
}

// checkReport checks every row and column is there with non-zero figures,
// and every ratio is the quotient of the figures it names.
func checkReport(t *testing.T, r *report.Report, streams []int) {
	t.Helper()
	if want := []string{"metric", "overlay", "underlay", "reference", "fastest", "overlay-nofw", "overlay/underlay", "overlay/fastest", "overlay/reference", "fastest/underlay", "reference/underlay", "overlay/overlay-nofw"}; !slices.Equal(r.Columns, want) {
		t.Fatalf("columns = %v, want %v", r.Columns, want)
	}
	wantRows := []string{"TCP throughput, 1 stream (Gbit/s)", "TCP throughput, 4 streams (Gbit/s)",
		"TCP 1-byte request/response p50 (µs)", "TCP 1-byte request/response p99 (µs)",
		"MTU of the client's eth0 (bytes)", "DF ping of MTU-28 bytes"}
	if len(r.Rows) != len(wantRows) {
		t.Fatalf("%d rows, want %d: %v", len(r.Rows), len(wantRows), r.Rows)
	}
	for i, row := range r.Rows {
		if row[0] != wantRows[i] {
			t.Errorf("row %d is %q, want %q", i, row[0], wantRows[i])
		}
		if len(row) != len(r.Columns) {
			t.Errorf("row %q has %d cells, want %d", row[0], len(row), len(r.Columns))
		}
	}
	figs := r.Values["figures"].(map[string]map[string]float64)
	ratios := r.Values["ratios"].(map[string]map[string]float64)
	keys := []string{p50Key, p99Key}
	for _, n := range streams {
		keys = append(keys, throughputKey(n))
	}
	for _, key := range keys {
		rowIndex := slices.IndexFunc(r.Rows, func(row []string) bool {
			return strings.Contains(row[0], map[string]string{p50Key: "p50", p99Key: "p99", throughputKey(1): "1 stream", throughputKey(4): "4 streams"}[key])
		})
		for _, path := range Paths() {
			if figs[key][path] <= 0 {
				t.Errorf("%s on %s = %v, want > 0", key, path, figs[key][path])
			}
		}
		for i, pair := range Ratios() {
			name := pair[0] + "/" + pair[1]
			want := figs[key][pair[0]] / figs[key][pair[1]]
			if got := ratios[key][name]; got != want {
				t.Errorf("%s ratio %s = %v, want %v / %v = %v", key, name, got, figs[key][pair[0]], figs[key][pair[1]], want)
			}
			if cell := r.Rows[rowIndex][1+len(Paths())+i]; cell != labrun.FormatRatio(want) {
				t.Errorf("%s: table shows %s = %s, the figures give %s", key, name, cell, labrun.FormatRatio(want))
			}
		}
	}
	mtu := r.Rows[len(r.Rows)-2]
	if want := []string{"1450", "1500", "1450", "1450", "1450"}; !slices.Equal(mtu[1:1+numPaths], want) {
		t.Errorf("MTUs overlay/underlay/reference/fastest/overlay-nofw = %v, want %v", mtu[1:1+numPaths], want)
	}
	for i, cell := range r.Rows[len(r.Rows)-1][1 : 1+numPaths] {
		if cell != dfOK {
			t.Errorf("DF probe on %s = %q, want %q", Paths()[i], cell, dfOK)
		}
	}
}

// TestCancelLeavesNothing is ctrl-C in the middle of a round: Run returns
// the cancellation and has removed the cluster, the reference and the load.
func TestCancelLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates network namespaces")
	}
	weft := weftBinary(t)
	before := netnsNames(t)
	iperfBefore := pids(t, "iperf3")
	t.Cleanup(func() {
		if left := leftovers(t, weft, before); len(left) > 0 {
			t.Errorf("namespaces left behind (now removed): %v", left)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Duration: 30 * time.Second, Rounds: 1, Weft: weft})
		done <- err
	}()
	// Cancel once the first measurement is under way.
	if err := labrun.Poll(context.Background(), 60*time.Second, "the first measurement to start", func() bool {
		return len(pids(t, "iperf3")) > len(iperfBefore) || slices.ContainsFunc(netnsNames(t), func(n string) bool { return strings.HasPrefix(n, "weftref-") })
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // into the measurement, past the reachability checks
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("Run after cancel = %v, want the cancellation", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("Run did not return within 3 minutes of the cancel")
	}
	if left := leftovers(t, weft, before); len(left) > 0 {
		t.Errorf("Run left namespaces behind after a cancel: %v", left)
	}
	if now := pids(t, "iperf3"); len(now) > len(iperfBefore) {
		t.Errorf("iperf3 left running after a cancel: %v", now)
	}
}
