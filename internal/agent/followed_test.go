package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// fakeViewer is a mirror that has loaded (ok) snap, or not yet.
type fakeViewer struct {
	snap  store.Snapshot
	ok    bool
	reads int
}

func (f *fakeViewer) LastView() (store.Snapshot, time.Time, bool) {
	f.reads++
	if !f.ok {
		return store.Snapshot{}, time.Time{}, false
	}
	return f.snap, time.Now(), true
}

func TestFollowedViewsComeFromTheMirror(t *testing.T) {
	c := &spec.Cluster{Name: "shop", VIPs: []spec.VIP{{Name: "front"}}}
	weights := map[string]model.RouteWeights{"/api": {Route: "/api", Backends: []model.Weight{{Service: "api", Weight: 100}}}}
	shifts := map[string]model.Shift{"/api": {ID: "s1", State: "running"}}
	cases := []struct {
		name       string
		viewer     fakeViewer
		wantSpec   *spec.Cluster
		wantWeight map[string]model.RouteWeights
		wantShifts map[string]model.Shift
	}{
		{name: "mirror not loaded yet", viewer: fakeViewer{}},
		{name: "loaded before the first apply", viewer: fakeViewer{ok: true}},
		{
			name:       "loaded with a file, weights and a shift",
			viewer:     fakeViewer{ok: true, snap: store.Snapshot{Spec: c, Weights: weights, Shifts: shifts}},
			wantSpec:   c,
			wantWeight: weights,
			wantShifts: shifts,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.viewer
			if got := followedSpec(&v); got != tc.wantSpec {
				t.Errorf("followedSpec = %v, want %v", got, tc.wantSpec)
			}
			g := followedGatewayView(&v)
			if g.spec != tc.wantSpec || !reflect.DeepEqual(g.live, tc.wantWeight) || !reflect.DeepEqual(g.shifts, tc.wantShifts) {
				t.Errorf("followedGatewayView = %+v, want spec %v, live %v, shifts %v", g, tc.wantSpec, tc.wantWeight, tc.wantShifts)
			}
			if v.reads != 2 {
				t.Errorf("%d reads of the mirror, want one per call (2)", v.reads)
			}
		})
	}
}
