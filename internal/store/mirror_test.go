package store

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// The mirror must always equal what Snapshot reads from etcd: after the
// first load, after puts, after deletes.
func TestMirrorFollowsTheStore(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	m := s.Mirror(ctx)

	same := func(what string) {
		t.Helper()
		eventually(t, 5*time.Second, what, func() bool {
			want, err := s.Snapshot(ctx)
			if err != nil {
				return false
			}
			got, ok := m.Snapshot()
			return ok && reflect.DeepEqual(got.Spec, want.Spec) && reflect.DeepEqual(got.Hosts, want.Hosts) &&
				reflect.DeepEqual(got.Assign, want.Assign) && reflect.DeepEqual(got.Status, want.Status) &&
				reflect.DeepEqual(got.Weights, want.Weights) && reflect.DeepEqual(got.Shifts, want.Shifts)
		})
	}
	same("empty store mirrored")

	c := &spec.Cluster{Name: "shop", Version: 1}
	if _, err := s.PutSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	a := model.Assignment{Container: "web-1", Service: "web", Index: 1, Host: "host1", IP: netip.MustParseAddr("10.10.0.5")}
	if err := s.ReplaceAssignments(ctx, nil, map[string]model.Assignment{"web-1": a}, Guard{}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStatus(ctx, model.ContainerStatus{Container: "web-1", State: model.StateRunning}); err != nil {
		t.Fatal(err)
	}
	// Routes are escaped in keys; readers see them by route.
	sh := model.Shift{ID: "s1", ShiftSettings: model.ShiftSettings{Route: "/api/v1"}, State: "running"}
	w := model.RouteWeights{Route: "/api/v1", Backends: []model.Weight{{Service: "web", Weight: 90}, {Service: "web2", Weight: 10}}}
	if err := s.PutShift(ctx, sh, &w, Guard{}); err != nil {
		t.Fatal(err)
	}
	same("puts mirrored")
	if got, _ := m.Snapshot(); got.Shifts["/api/v1"].ID != "s1" || len(got.Weights["/api/v1"].Backends) != 2 {
		t.Fatalf("mirror has shifts %+v and weights %+v, want both by route /api/v1", got.Shifts, got.Weights)
	}
	select {
	case <-m.Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("no change signalled")
	}

	if err := s.ReplaceAssignments(ctx, map[string]model.Assignment{"web-1": a}, nil, Guard{}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStatus(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	sh.State = "done"
	if err := s.PutShift(ctx, sh, nil, Guard{}); err != nil {
		t.Fatal(err)
	}
	same("deletes mirrored")
	if got, _ := m.Snapshot(); len(got.Weights) != 0 || got.Shifts["/api/v1"].State != "done" {
		t.Fatalf("mirror after the shift ended: shifts %+v, weights %+v", got.Shifts, got.Weights)
	}
	if got, _ := m.Snapshot(); len(got.Assign) != 0 || len(got.Status) != 0 || got.Spec == nil {
		t.Fatalf("mirror after deletes: %+v", got)
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	same("spec deletion mirrored")
}

// One undecodable value under the cluster's prefix is skipped and reported
// by every reader, and never stalls the mirror: changes after it still
// arrive, and a later good value for the same key replaces the report.
func TestBadValuesAreSkippedAndReported(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	m := s.Mirror(ctx)
	eventually(t, 5*time.Second, "first load", func() bool { _, ok := m.Snapshot(); return ok })

	put := func(key, value string) {
		t.Helper()
		if _, err := s.client.Put(ctx, key, value); err != nil {
			t.Fatal(err)
		}
	}
	good := model.Assignment{Container: "web-1", Service: "web", Index: 1, Host: "host1", IP: netip.MustParseAddr("10.10.0.5")}
	if err := s.ReplaceAssignments(ctx, nil, map[string]model.Assignment{"web-1": good}, Guard{}); err != nil {
		t.Fatal(err)
	}
	badKeys := []string{s.specKey(), s.assignKey("api-1"), s.hostKey("host9"), s.statusKey("web-1"), s.downKey("host2")}
	for _, k := range badKeys {
		put(k, "{not json")
	}
	// A change after the bad values must still reach the mirror.
	later := good
	later.Container, later.IP = "web-2", netip.MustParseAddr("10.10.0.6")
	if err := s.ReplaceAssignments(ctx, nil, map[string]model.Assignment{"web-2": later}, Guard{}); err != nil {
		t.Fatal(err)
	}

	keysOf := func(bad []BadValue) []string {
		var out []string
		for _, b := range bad {
			out = append(out, b.Key)
		}
		return out
	}
	snapBad := []string{s.assignKey("api-1"), s.hostKey("host9"), s.specKey(), s.statusKey("web-1")}
	t.Run("Snapshot", func(t *testing.T) {
		snap, err := s.Snapshot(ctx)
		if err != nil {
			t.Fatalf("Snapshot failed on a bad value: %v", err)
		}
		if snap.Spec != nil || len(snap.Assign) != 2 || snap.Assign["web-1"] != good {
			t.Errorf("Snapshot: spec %v, assign %v; want no spec and both good assignments", snap.Spec, snap.Assign)
		}
		if got := keysOf(snap.Bad); !reflect.DeepEqual(got, snapBad) {
			t.Errorf("Snapshot.Bad = %v, want %v", got, snapBad)
		}
		if len(snap.Bad) == 4 && (snap.Bad[0].Kind != "assign" || snap.Bad[0].Name != "api-1" || snap.Bad[2].Kind != "spec" || snap.Bad[2].Name != "") {
			t.Errorf("Snapshot.Bad kinds and names: %+v", snap.Bad)
		}
	})
	t.Run("LeaderView", func(t *testing.T) {
		v, err := s.LeaderView(ctx)
		if err != nil {
			t.Fatalf("LeaderView failed on a bad value: %v", err)
		}
		// The leader reads statuses too (for rollouts).
		want := []string{s.assignKey("api-1"), s.downKey("host2"), s.hostKey("host9"), s.specKey(), s.statusKey("web-1")}
		if got := keysOf(v.Bad); !reflect.DeepEqual(got, want) || len(v.Assign) != 2 {
			t.Errorf("LeaderView.Bad = %v (assign %v), want %v", got, v.Assign, want)
		}
	})
	t.Run("Mirror", func(t *testing.T) {
		eventually(t, 5*time.Second, "the mirror past the bad values", func() bool {
			got, ok := m.Snapshot()
			return ok && got.Assign["web-2"] == later && reflect.DeepEqual(keysOf(got.Bad), snapBad)
		})
		// A good value for a bad key clears its report; the mirror still
		// equals a fresh read.
		put(s.statusKey("web-1"), `{"container":"web-1","state":"running"}`)
		if _, err := s.client.Delete(ctx, s.assignKey("api-1")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "reports cleared", func() bool {
			got, _ := m.Snapshot()
			want, err := s.Snapshot(ctx)
			return err == nil && reflect.DeepEqual(got.Bad, want.Bad) && reflect.DeepEqual(got.Status, want.Status) &&
				len(got.Bad) == 2 && got.Status["web-1"].State == model.StateRunning
		})
	})
	for _, k := range []string{s.specKey(), s.hostKey("host9")} {
		if _, err := s.client.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
}
