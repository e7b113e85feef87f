package gateway

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
func pids(name string) []string {
	out, _ := exec.Command("pgrep", "-x", "-P", fmt.Sprintf("1,%d", os.Getpid()), name).Output()
	return strings.Fields(string(out))
}

// leftovers removes, after a failed run, the bench clusters that appeared
// during the test, and reports them.
func leftovers(weft string, before, now []string) []string {
	var left []string
	for _, n := range now {
		if slices.Contains(before, n) || !strings.HasPrefix(n, "weft.bg") {
			continue
		}
		_ = exec.Command(weft, "down", "--cluster", strings.Split(n, ".")[1]).Run()
		left = append(left, n)
	}
	return left
}

func TestRunThreeHosts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates network namespaces")
	}
	weft, hello := binaries(t)
	if _, err := exec.LookPath("nginx"); err != nil {
		out, err := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "nginx-light").CombinedOutput()
		if err != nil {
			t.Skipf("nginx is missing and cannot be installed: %v\n%s", err, out)
		}
	}
	tools := []string{"builtin"}
	if _, err := exec.LookPath("wrk"); err == nil {
		tools = append([]string{"wrk"}, tools...)
	} else {
		t.Log("wrk is not installed: only the built-in load is tested")
	}
	for _, tool := range tools {
		t.Run(tool, func(t *testing.T) {
			before := netnsNames(t)
			nginxBefore, wrkBefore := pids("nginx"), pids("wrk")
			t.Cleanup(func() {
				if left := leftovers(weft, before, netnsNames(t)); len(left) > 0 {
					t.Errorf("namespaces left behind (now removed): %v", left)
				}
				if now := pids("nginx"); len(now) > len(nginxBefore) {
					t.Errorf("nginx processes left behind: %v (before: %v)", now, nginxBefore)
				}
				if now := pids("wrk"); len(now) > len(wrkBefore) {
					t.Errorf("wrk processes left behind: %v (before: %v)", now, wrkBefore)
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			r, err := Run(ctx, Options{
				Duration: time.Second, Rounds: 2, Connections: []int{16},
				Weft: weft, Hello: hello, Tool: tool, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			var table bytes.Buffer
			if err := r.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", table.String())
			checkReport(t, r, 16)
			if !strings.Contains(r.Tool, map[string]string{"wrk": "wrk ", "builtin": "built-in Go HTTP"}[tool]) {
				t.Errorf("Tool = %q does not name the %s load", r.Tool, tool)
			}
			if errs := r.Values["errors"].(map[string]int64); errs[Weft] != 0 || errs[Nginx] != 0 {
				t.Errorf("failed requests: %v", errs)
			}
		})
	}
}

// checkReport checks every row and column is there with non-zero figures,
// and every ratio is the quotient of the figures it names.
func checkReport(t *testing.T, r *report.Report, connections int) {
	t.Helper()
	if want := []string{"metric", Weft, Nginx, RatioName}; !slices.Equal(r.Columns, want) {
		t.Fatalf("columns = %v, want %v", r.Columns, want)
	}
	keys := []string{rpsKey(connections), p50Key(connections), p99Key(connections), cpuKey(connections)}
	labels := []string{"requests/s, 16 connections", "latency p50, 16 connections (ms)", "latency p99, 16 connections (ms)",
		"proxy CPU per 1000 requests, 16 connections (ms)"}
	if len(r.Rows) != len(keys) {
		t.Fatalf("%d rows, want %d: %v", len(r.Rows), len(keys), r.Rows)
	}
	figs := r.Values["figures"].(map[string]map[string]float64)
	ratios := r.Values["ratios"].(map[string]float64)
	for i, key := range keys {
		row := r.Rows[i]
		if row[0] != labels[i] || len(row) != 4 {
			t.Errorf("row %d = %v, want %q and 4 cells", i, row, labels[i])
			continue
		}
		for _, proxy := range Proxies() {
			if figs[key][proxy] <= 0 {
				t.Errorf("%s of %s = %v, want > 0", key, proxy, figs[key][proxy])
			}
		}
		want := figs[key][Weft] / figs[key][Nginx]
		if ratios[key] != want {
			t.Errorf("%s ratio = %v, want %v / %v = %v", key, ratios[key], figs[key][Weft], figs[key][Nginx], want)
		}
		if row[3] != labrun.FormatRatio(want) {
			t.Errorf("%s: table shows %s, the figures give %s", key, row[3], labrun.FormatRatio(want))
		}
	}
}

func TestParseWrk(t *testing.T) {
	const out = `Running 1s test @ http://10.10.0.2:8081/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  640.11us  12.03ms   91.02%
    Req/Sec     5.34k   312.45     5.80k    70.00%
  Latency Distribution
     50%    1.41ms
     75%    1.62ms
     90%    1.95ms
     99%    3.98ms
  10626 requests in 1.00s, 2.91MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  10611.23
Transfer/sec:      2.91MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 10611.23 || r.P50 != 1410*time.Microsecond || r.P99 != 3980*time.Microsecond || r.Requests != 10626 || r.Errors != 7 {
		t.Errorf("parseWrk = %+v", r)
	}
	if _, err := parseWrk("unable to connect to 10.10.0.2:8081 Connection refused"); err == nil {
		t.Error("wrk's failure read as a result")
	}
	for in, want := range map[string]time.Duration{"812.00us": 812 * time.Microsecond, "2.50s": 2500 * time.Millisecond, "1.00m": time.Minute} {
		if got := parseWrkDuration(in); got != want {
			t.Errorf("parseWrkDuration(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestParseStat(t *testing.T) {
	pgrp, cpu, err := parseStat("4242 (nginx: worker (x)) S 4240 4239 4240 0 -1 4194624 101 0 0 0 250 75 0 0 20 0 1 0 12345 0 0")
	if err != nil || pgrp != 4239 || cpu != 3250*time.Millisecond {
		t.Errorf("parseStat = %d %v %v, want 4239 3.25s", pgrp, cpu, err)
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Errorf("CPU time of this test: %v", err)
	}
}

func TestBuildReportFromKnownFigures(t *testing.T) {
	m := &measurements{Connections: []int{8}, Rounds: 3}
	for _, k := range []float64{1, 3, 2} {
		m.add(Weft, 8, result{RPS: 900 * k, P50: time.Duration(k) * time.Millisecond, P99: time.Duration(3*k) * time.Millisecond,
			Requests: 1000, CPU: time.Duration(k) * 100 * time.Millisecond})
		m.add(Nginx, 8, result{RPS: 1000 * k, P50: time.Duration(k) * time.Millisecond, P99: time.Duration(2*k) * time.Millisecond, Errors: 1,
			Requests: 2000, CPU: time.Duration(k) * 100 * time.Millisecond})
	}
	r := buildReport(m, "test")
	want := [][]string{
		{"requests/s, 8 connections", "1800", "2000", "0.900"},
		{"latency p50, 8 connections (ms)", "2.000", "2.000", "1.000"},
		{"latency p99, 8 connections (ms)", "6.000", "4.000", "1.500"},
		{"proxy CPU per 1000 requests, 8 connections (ms)", "200.0", "100.0", "2.000"},
	}
	for i := range want {
		if !slices.Equal(r.Rows[i], want[i]) {
			t.Errorf("row %d = %v, want %v", i, r.Rows[i], want[i])
		}
	}
	notes := strings.Join(r.Notes, "\n")
	for _, s := range []string{"requests/s: 0.900 (NOT met)", "CPU per request <= 1.0x nginx's: 2.000 (NOT met)", "p99 no worse than nginx's: 1.500 (NOT met)", "nginx: 3 requests failed"} {
		if !strings.Contains(notes, s) {
			t.Errorf("notes lack %q:\n%s", s, notes)
		}
	}
}

// testWriter sends the bench's log to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
