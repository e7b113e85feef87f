package shift

import (
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

func cluster(v1, v2 int) *spec.Cluster {
	return &spec.Cluster{
		Routes: []spec.Route{
			{Prefix: "/api", Backends: []spec.RouteBackend{{Service: "v1", Weight: v1}, {Service: "v2", Weight: v2}}},
			{Prefix: "/", Service: "web"},
		},
		Services: []spec.Service{{Name: "v1", Port: 80}, {Name: "v2", Port: 80}, {Name: "web", Port: 80}, {Name: "worker"}},
	}
}

func weights(v1, v2 int) []model.Weight {
	return []model.Weight{{Service: "v1", Weight: v1}, {Service: "v2", Weight: v2}}
}

func TestReconcile(t *testing.T) {
	promoted := map[string]model.RouteWeights{"/api": {Route: "/api", Backends: weights(0, 100), File: weights(100, 0), By: "weft shift 1"}}
	for _, tc := range []struct {
		name    string
		c       *spec.Cluster
		live    map[string]model.RouteWeights
		running bool
		drop    bool
		note    string
	}{
		{"unchanged file: the promotion stays, reported", cluster(100, 0), promoted, false, false, "differ from the file's v1=100 v2=0 and stay"},
		{"the file caught up: the record goes", cluster(0, 100), promoted, false, true, "the file is their source again"},
		{"the file changed otherwise: the file wins", cluster(50, 50), promoted, false, true, "the file changed its weights"},
		{"changed while a shift runs: the shift's stay", cluster(50, 50), promoted, true, false, "a shift of the route is running"},
		{"route gone", &spec.Cluster{Services: cluster(1, 1).Services}, promoted, false, true, "gone from the file"},
		{"no record: nothing to say", cluster(100, 0), nil, false, false, ""},
	} {
		shifts := map[string]model.Shift{}
		if tc.running {
			shifts["/api"] = model.Shift{State: model.ShiftRunning}
		}
		d := Reconcile(tc.c, tc.live, shifts)
		if got := len(d.Drop) == 1; got != tc.drop {
			t.Errorf("%s: drop %v, want %v", tc.name, d.Drop, tc.drop)
		}
		notes := strings.Join(d.Notes, "\n")
		if tc.note == "" && notes != "" || !strings.Contains(notes, tc.note) {
			t.Errorf("%s: notes %q, want %q", tc.name, notes, tc.note)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	s := model.ShiftSettings{Route: "/api", To: "v2"}
	cur, fromFile, err := CheckTarget(s, cluster(100, 0), nil)
	if err != nil || !fromFile || FormatWeights(cur) != "v1=100 v2=0" {
		t.Fatalf("CheckTarget: %v %v %v", cur, fromFile, err)
	}
	live := map[string]model.RouteWeights{"/api": {Backends: weights(40, 60)}}
	if cur, fromFile, err = CheckTarget(s, cluster(100, 0), live); err != nil || fromFile || FormatWeights(cur) != "v1=40 v2=60" {
		t.Fatalf("CheckTarget with live weights: %v %v %v", cur, fromFile, err)
	}
	for _, tc := range []struct {
		s    model.ShiftSettings
		c    *spec.Cluster
		want string
	}{
		{model.ShiftSettings{Route: "/nope", To: "v2"}, cluster(100, 0), "ROUTE: the cluster file has no route"},
		{model.ShiftSettings{Route: "/api", To: "v3"}, cluster(100, 0), "--to: the cluster file has no service"},
		{model.ShiftSettings{Route: "/api", To: "worker"}, cluster(100, 0), "has no port"},
		{model.ShiftSettings{Route: "/api", To: "v2"}, cluster(0, 100), "already takes all the traffic"},
		{model.ShiftSettings{Route: "/", To: "v2"}, cluster(0, 100), ""},
	} {
		_, _, err := CheckTarget(tc.s, tc.c, nil)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckTarget(%+v) = %v, want %q", tc.s, err, tc.want)
		}
	}
}
