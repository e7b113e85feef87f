package up

import (
	"slices"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/bench/report"
	"github.com/weft-dev/weft/internal/spec"
)

func TestVariantClusterFiles(t *testing.T) {
	for _, v := range compared {
		shape := clusterShape{Name: "bu0a1f", Hosts: 3, HostsPerSubnet: 1, Replicas: 12, Hello: "/opt/bin/hello", HealthInterval: 200 * time.Millisecond, NoFirewall: v.NoFirewall, NoUserNS: v.NoUserNS}
		cl, err := spec.Parse([]byte(clusterFile(shape)), t.TempDir())
		if err != nil {
			t.Fatalf("%s: %v\n%s", v.Name, err, clusterFile(shape))
		}
		svc, _ := cl.ServiceByName(serviceName)
		if cl.FirewallOn() == v.NoFirewall || svc.UserNSOn() == v.NoUserNS {
			t.Errorf("%s: firewall %t, userns %t", v.Name, cl.FirewallOn(), svc.UserNSOn())
		}
	}
}

func TestCompareRowsAndRatios(t *testing.T) {
	o := Options{Sizes: []int{3}, PerHost: 4, Additions: 1, Compare: true, Rounds: 3}
	var results []sizeResult
	// up_s per round: on 2, 3, 4 (median 3); nofw 1, 2, 3 (median 2);
	// nouserns 3, 3, 3 (median 3); the last nofw round failed.
	ups := map[string][]float64{"on": {2, 3, 4}, "nofw": {1, 2, 3}, "nouserns": {3, 3, 3}}
	for round := 1; round <= 3; round++ {
		for _, v := range compared {
			s := sizeResult{Hosts: 3, Containers: 12, Variant: v.Name, Round: round, UpSeconds: ups[v.Name][round-1], DownSeconds: 1, ManagerPeakMB: 30}
			if v.Name == "nofw" && round == 3 {
				s.Error = "boom"
			}
			results = append(results, s)
		}
	}
	rows, notes, costs := compareVariants(o, results)
	if len(rows) != 2 || len(notes) != 2 || len(costs) != 2 {
		t.Fatalf("rows %v, notes %v, costs %v", rows, notes, costs)
	}
	// nofw: rounds 1 and 2 only, median 1 (nearest rank of {1, 2}); on: 3.
	if c := costs[0]; c.Variant != "nofw" || c.Rounds != 2 || c.UpOn != 3 || c.Up != 1 || c.UpRatio != 3 || c.DownRatio != 1 {
		t.Errorf("nofw: %+v", c)
	}
	if c := costs[1]; c.Variant != "nouserns" || c.Rounds != 3 || c.UpRatio != 1 {
		t.Errorf("nouserns: %+v", c)
	}
	for _, row := range rows {
		if len(row) != 2+len(columns) {
			t.Fatalf("row %v has %d cells, want %d", row, len(row), 2+len(columns))
		}
	}
	if want := []string{"on/nofw", "median", "3", "12", "3.00", "1.00"}; !slices.Equal(rows[0][:6], want) {
		t.Errorf("ratio row %v, want it to begin with %v", rows[0], want)
	}

	// The whole report: a variant and a round column, a row per run and
	// per ratio, every row as wide as the columns.
	r := &report.Report{Columns: slices.Clone(columns), Values: map[string]any{}, Files: map[string]string{}}
	o.ResultsDir = t.TempDir()
	if err := fillReport(r, o, results); err != nil {
		t.Fatal(err)
	}
	if r.Columns[0] != "variant" || r.Columns[1] != "round" || len(r.Rows) != len(results)+2 {
		t.Fatalf("columns %v, %d rows", r.Columns, len(r.Rows))
	}
	for _, row := range r.Rows {
		if len(row) != len(r.Columns) {
			t.Errorf("row %v has %d cells for %d columns", row, len(row), len(r.Columns))
		}
	}
}
