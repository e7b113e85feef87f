package up

import (
	"context"
	"image/png"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/naming"
)

// binaries builds weft and hello once per test into a temporary folder, so
// the test does not depend on (or race with) someone else's bin/.
func binaries(t *testing.T) (weft, hello string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces")
	}
	dir := t.TempDir()
	weft, hello = filepath.Join(dir, "weft"), filepath.Join(dir, "hello")
	for bin, pkg := range map[string]string{weft: "./cmd/weft", hello: "./examples/hello"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = "../../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, out)
		}
	}
	return weft, hello
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// assertGone fails when anything named for cluster is still there.
func assertGone(t *testing.T, cluster string) {
	t.Helper()
	left, err := leftoverNamespaces(cluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("cluster %s left namespaces behind: %v", cluster, left)
	}
	if _, err := os.Stat(naming.StateDir(naming.DefaultStateRoot, cluster)); err == nil {
		t.Errorf("cluster %s left its state folder behind", cluster)
	}
	if procs := clusterProcesses(cluster); len(procs) > 0 {
		t.Errorf("cluster %s left processes behind: %q", cluster, procs)
	}
}

// clusterProcesses lists the command lines naming the cluster, as agents
// and resolvers do.
func clusterProcesses(cluster string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "--cluster\x00"+cluster+"\x00") {
			out = append(out, p+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func TestRunSmallSizesGivesACompleteReport(t *testing.T) {
	weft, hello := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	results := t.TempDir()
	const perHost = 4
	r, err := Run(ctx, Options{Sizes: []int{2, 3}, PerHost: perHost, Additions: 3, ResultsDir: results, Weft: weft, Hello: hello, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + buf.String())

	sizes, ok := r.Values["sizes"].([]sizeResult)
	if !ok || len(sizes) != 2 {
		t.Fatalf("values[sizes] = %#v", r.Values["sizes"])
	}
	for _, s := range sizes {
		t.Cleanup(func() { assertGone(t, s.Cluster) })
		if s.Error != "" || len(s.Problems) > 0 || s.FailedAdds > 0 {
			t.Errorf("%d hosts: error %q, problems %q, %d failed additions", s.Hosts, s.Error, s.Problems, s.FailedAdds)
		}
	}
	if len(r.Rows) != 2 || len(r.Columns) != len(columns) {
		t.Fatalf("got %d rows, %d columns", len(r.Rows), len(r.Columns))
	}
	for i, row := range r.Rows {
		hosts := []int{2, 3}[i]
		if len(row) != len(r.Columns) {
			t.Fatalf("row %d has %d cells for %d columns", i, len(row), len(r.Columns))
		}
		cell := map[string]string{}
		for j, c := range r.Columns {
			cell[c] = row[j]
			if row[j] == "" {
				t.Errorf("%d hosts: column %s is empty", hosts, c)
			}
		}
		// Every number is measured: positive, except the worker column,
		// which has nothing to show when all hosts are managers.
		for _, c := range []string{"up_s", "down_s", "agent_mgr_peak_mb", "resolver_peak_mb", "idle_cpu_cores", "new_resolvable_p50_ms", "new_resolvable_p99_ms", "new_reachable_p50_ms", "new_reachable_p99_ms"} {
			if v, err := strconv.ParseFloat(cell[c], 64); err != nil || v <= 0 {
				t.Errorf("%d hosts: %s = %q, want a positive number", hosts, c, cell[c])
			}
		}
		if cell["agent_worker_peak_mb"] != noWorker {
			t.Errorf("%d hosts are all managers, worker column = %q", hosts, cell["agent_worker_peak_mb"])
		}
		if cell["hosts"] != strconv.Itoa(hosts) || cell["containers"] != strconv.Itoa(hosts*perHost) || cell["additions"] != "3" {
			t.Errorf("row %v", row)
		}
		// One permanent neighbor per remote container, and for each an FDB
		// entry on the bridge and one on the vxlan device (plus the device's own).
		remote := (hosts - 1) * perHost
		if cell["neigh_per_host"] != strconv.Itoa(remote) {
			t.Errorf("%d hosts: neighbors per host %q, want %d", hosts, cell["neigh_per_host"], remote)
		}
		if fdb, err := strconv.Atoi(cell["fdb_per_host"]); err != nil || fdb < 2*remote {
			t.Errorf("%d hosts: fdb per host %q, want at least %d", hosts, cell["fdb_per_host"], 2*remote)
		}
		p50, _ := strconv.ParseFloat(cell["new_reachable_p50_ms"], 64)
		p99, _ := strconv.ParseFloat(cell["new_reachable_p99_ms"], 64)
		res, _ := strconv.ParseFloat(cell["new_resolvable_p99_ms"], 64)
		if p50 > p99 || res > p99 {
			t.Errorf("%d hosts: reachable p50 %v, p99 %v, resolvable p99 %v: reachable comes after resolvable", hosts, p50, p99, res)
		}
	}

	// The fit comes from the measured points.
	fit, ok := r.Values["fit_up"].(growthFit)
	if !ok {
		t.Fatalf("values[fit_up] = %#v", r.Values["fit_up"])
	}
	want, err := fitGrowth([]int{sizes[0].Hosts, sizes[1].Hosts}, []float64{sizes[0].UpSeconds, sizes[1].UpSeconds})
	if err != nil {
		t.Fatal(err)
	}
	slope := (sizes[1].UpSeconds - sizes[0].UpSeconds) / float64(sizes[1].Hosts-sizes[0].Hosts)
	if fit != want || fit.Points != 2 || fit.Better != "undetermined" || abs(fit.Linear.Slope-slope) > 1e-9 {
		t.Errorf("fit %+v, want %+v with slope %v", fit, want, slope)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "up time growth undetermined") {
		t.Errorf("notes do not describe the growth: %q", r.Notes)
	}

	f, err := os.Open(r.Files["plot"])
	if err != nil {
		t.Fatalf("plot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("plot %s does not decode: %v", r.Files["plot"], err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Errorf("plot is %v", b)
	}
	csvPath, jsonPath, err := r.Save(results)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{csvPath, jsonPath} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("saved %s: %v", p, err)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestProbesAndCountsAgreeWithTheKernelTools checks the measuring
// instruments on a live cluster against iproute2 and against known answers.
func TestProbesAndCountsAgreeWithTheKernelTools(t *testing.T) {
	weft, hello := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	name, err := newClusterName()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "weft.yaml")
	shape := clusterShape{Name: name, Hosts: 2, HostsPerSubnet: 2, Replicas: 4, Hello: hello, HealthInterval: 200 * time.Millisecond}
	if err := os.WriteFile(file, []byte(clusterFile(shape)), 0o644); err != nil {
		t.Fatal(err)
	}
	w := weftCLI{bin: weft, log: testLogger(t)}
	t.Cleanup(func() {
		if _, err := w.down(context.Background(), name); err != nil {
			t.Errorf("down: %v", err)
		}
		assertGone(t, name)
	})
	if _, _, err := w.up(ctx, file, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	st, err := w.status(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if procs := clusterProcesses(name); len(procs) < 2*len(st.Hosts) {
		t.Errorf("cluster is up, but only %d processes name it (want an agent and a resolver per host): %q", len(procs), procs)
	}

	for _, h := range st.Hosts {
		fdb, neigh, err := overlayEntries(h.Netns, benchVNI)
		if err != nil {
			t.Fatal(err)
		}
		dev := naming.VXLANDevice(benchVNI)
		if want := lines(t, "ip", "netns", "exec", h.Netns, "bridge", "fdb", "show", "dev", dev); fdb != want {
			t.Errorf("host %s: %d FDB entries, bridge fdb shows %d", h.Name, fdb, want)
		}
		if want := lines(t, "ip", "netns", "exec", h.Netns, "ip", "neigh", "show", "dev", dev); neigh != want || neigh != 2 {
			t.Errorf("host %s: %d neighbors, ip neigh shows %d, want 2 remote containers", h.Name, neigh, want)
		}
		m, err := processMemory(h.AgentPid)
		if err != nil || m.RSS <= 0 || m.Peak < m.RSS {
			t.Errorf("agent of %s: memory %+v, %v", h.Name, m, err)
		}
		pid, err := resolverPid(naming.DefaultStateRoot, name, h.Name)
		if err != nil || !processAlive(pid) {
			t.Errorf("resolver of %s: pid %d, %v", h.Name, pid, err)
		}
	}

	origin, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	probes, err := openProbes(st)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(probes)
	for _, c := range st.Containers {
		for host, p := range probes {
			got, ok, err := p.resolve(ctx, c.Container+".weft", time.Second)
			if err != nil || !ok || got != c.IP {
				t.Errorf("resolver of %s: %s -> %v (%v, %v), want %v", host, c.Container, got, ok, err, c.IP)
			}
			if err := p.connect(ctx, netip.AddrPortFrom(c.IP, servicePort), time.Second); err != nil {
				t.Errorf("from %s to %s: %v", host, c.Container, err)
			}
		}
	}
	for host, p := range probes {
		if got, ok, err := p.resolve(ctx, "tiny-99.weft", time.Second); err != nil || ok {
			t.Errorf("resolver of %s: unknown name answered %v, %v, %v", host, got, ok, err)
		}
		if err := p.connect(ctx, netip.AddrPortFrom(st.Containers[0].IP, 9), time.Second); err == nil {
			t.Errorf("from %s: a closed port accepted a connection", host)
		}
	}
	runtime.Gosched()
	now, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer now.Close()
	if !now.Equal(origin) {
		t.Error("probing left this thread in a lab namespace")
	}
}

func lines(t *testing.T, argv ...string) int {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return n
}

// clusterNames records the clusters Run announces in its log.
type clusterNames struct {
	slog.Handler
	seen chan string
}

func (h clusterNames) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "cluster" {
			h.seen <- a.Value.String()
		}
		return true
	})
	return h.Handler.Handle(ctx, r)
}

func TestInterruptedRunLeavesNothingBehind(t *testing.T) {
	weft, hello := binaries(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	names := clusterNames{Handler: testLogger(t).Handler(), seen: make(chan string, 16)}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Sizes: []int{3}, Additions: 2, ResultsDir: t.TempDir(), Weft: weft, Hello: hello, Log: slog.New(names)})
		done <- err
	}()
	var cluster string
	select {
	case cluster = <-names.seen:
	case err := <-done:
		t.Fatalf("Run ended before announcing a cluster: %v", err)
	}
	// Interrupt in the middle of the bring-up, once the namespaces exist.
	deadline := time.Now().Add(30 * time.Second)
	for {
		left, err := leftoverNamespaces(cluster)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster %s never got a namespace", cluster)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("Run after cancel: %v, want an interruption error", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("Run did not return after cancel")
	}
	assertGone(t, cluster)
}
