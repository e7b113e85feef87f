package up

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/spec"
)

func TestFitGrowthPicksTheShapeOfTheData(t *testing.T) {
	ns := []int{3, 10, 25, 50}
	linear := []float64{1 + 0.5*3, 1 + 0.5*10, 1 + 0.5*25, 1 + 0.5*50}
	g, err := fitGrowth(ns, linear)
	if err != nil {
		t.Fatal(err)
	}
	if g.Better != "linear" || math.Abs(g.Linear.Slope-0.5) > 1e-9 || math.Abs(g.Linear.Intercept-1) > 1e-9 || g.Linear.RSS > 1e-9 {
		t.Errorf("linear data: got %+v", g)
	}
	quadratic := []float64{2 + 0.01*9, 2 + 0.01*100, 2 + 0.01*625, 2 + 0.01*2500}
	g, err = fitGrowth(ns, quadratic)
	if err != nil {
		t.Fatal(err)
	}
	if g.Better != "quadratic" || math.Abs(g.Quadratic.Slope-0.01) > 1e-9 || g.Linear.RSS <= g.Quadratic.RSS {
		t.Errorf("quadratic data: got %+v", g)
	}
	pure, err := fitGrowth(ns, []float64{0.09, 1, 6.25, 25})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(pure.Exponent-2) > 1e-9 {
		t.Errorf("y = n²/100: exponent %.3f, want 2", pure.Exponent)
	}
	if !strings.Contains(g.describe("up time"), "grows quadratic") {
		t.Errorf("describe: %s", g.describe("up time"))
	}
}

func TestFitGrowthWithTwoSizesIsUndetermined(t *testing.T) {
	g, err := fitGrowth([]int{2, 3}, []float64{1.5, 2.1})
	if err != nil {
		t.Fatal(err)
	}
	if g.Better != "undetermined" || math.Abs(g.Linear.Slope-0.6) > 1e-9 || math.Abs(g.Quadratic.Slope-0.12) > 1e-9 {
		t.Errorf("got %+v", g)
	}
	if _, err := fitGrowth([]int{3, 3}, []float64{1, 2}); err == nil {
		t.Error("one distinct size: want an error")
	}
	if _, err := fitGrowth([]int{3}, []float64{1, 2}); err == nil {
		t.Error("mismatched lengths: want an error")
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	xs := []float64{50, 10, 40, 30, 20}
	for _, c := range []struct{ p, want float64 }{{50, 30}, {99, 50}, {0, 10}, {20, 10}, {21, 20}} {
		if got := percentile(xs, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("empty: want NaN")
	}
}

func TestClusterFileIsValidAndShapedAsAsked(t *testing.T) {
	for _, c := range []struct{ hosts, perSubnet, subnets int }{{3, 1, 3}, {50, 1, 50}, {254, 1, 254}, {10, 4, 3}} {
		shape := clusterShape{Name: "bu0a1f", Hosts: c.hosts, HostsPerSubnet: c.perSubnet, Replicas: 4 * c.hosts, Hello: "/opt/bin/hello", HealthInterval: 200 * time.Millisecond}
		cl, err := spec.Parse([]byte(clusterFile(shape)), t.TempDir())
		if err != nil {
			t.Fatalf("%d hosts: %v\n%s", c.hosts, err, clusterFile(shape))
		}
		if len(cl.Hosts) != c.hosts || len(cl.Network.Subnets) != c.subnets || len(cl.Managers()) != min(3, c.hosts) {
			t.Errorf("%d hosts: got %d hosts, %d subnets, %d managers", c.hosts, len(cl.Hosts), len(cl.Network.Subnets), len(cl.Managers()))
		}
		svc, ok := cl.ServiceByName(serviceName)
		if !ok || svc.Replicas != 4*c.hosts || svc.Command[0] != "/opt/bin/hello" || svc.Health == nil || svc.Health.Interval.Duration != 200*time.Millisecond {
			t.Errorf("%d hosts: service %+v", c.hosts, svc)
		}
	}
}

func TestOptionsRefuseImpossibleSizes(t *testing.T) {
	_, err := Options{Sizes: []int{300}, Weft: "/nonexistent/weft", Hello: "/nonexistent/hello"}.withDefaults()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"size 300 hosts", "weft binary", "hello binary", "make build"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestPlotIsAPNGOfTheGivenSizes(t *testing.T) {
	sizes := []sizeResult{{Hosts: 3, UpSeconds: 2.4, DownSeconds: 0.1}, {Hosts: 10, UpSeconds: 4.4, DownSeconds: 0.2}, {Hosts: 25, UpSeconds: 7.3, DownSeconds: 0.3}}
	fit, err := fitGrowth([]int{3, 10, 25}, []float64{2.4, 4.4, 7.3})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	started := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
	path, err := drawPlot(dir, started, sizes, &fit)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "up-20261122T010203Z.png") {
		t.Errorf("plot path %s", path)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("plot is only %v", b)
	}
}

func TestRowShowsWhatWasMeasuredAndCountsFailedAdditions(t *testing.T) {
	o := Options{ProbeTimeout: 30 * time.Second}
	s := sizeResult{Hosts: 50, Containers: 200, UpSeconds: 24.9, FDBMin: 393, FDBMax: 393, NeighMin: 196, NeighMax: 196,
		ReachableMs: []float64{100, 300, 200}, ResolvableMs: []float64{90, 290, 190}, FailedAdds: 1, Problems: []string{"reading memory: gone"}}
	row := s.row(o)
	cell := map[string]string{}
	for i, c := range columns {
		cell[c] = row[i]
	}
	want := map[string]string{
		"up_s": "24.90", "down_s": notMeasured, "agent_mgr_peak_mb": notMeasured, "fdb_per_host": "393", "idle_cpu_cores": notMeasured,
		"new_reachable_p50_ms": "200", "new_reachable_p99_ms": ">30000", "new_resolvable_p50_ms": "190", "additions": "4",
	}
	for c, w := range want {
		if cell[c] != w {
			t.Errorf("%s = %q, want %q", c, cell[c], w)
		}
	}
	s.FailedAdds = 0
	if got := s.row(o)[slices.Index(columns, "new_reachable_p99_ms")]; got != "300" {
		t.Errorf("without failures p99 = %q, want 300", got)
	}
}
