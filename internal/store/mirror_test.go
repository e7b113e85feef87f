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
	s := connect(t, tc.endpoints(), uniqueName("c"))
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
				reflect.DeepEqual(got.Assign, want.Assign) && reflect.DeepEqual(got.Status, want.Status)
		})
	}
	same("empty store mirrored")

	c := &spec.Cluster{Name: "shop", Version: 1}
	if _, err := s.PutSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	a := model.Assignment{Container: "web-1", Service: "web", Index: 1, Host: "host1", IP: netip.MustParseAddr("10.10.0.5")}
	if err := s.ReplaceAssignments(ctx, nil, map[string]model.Assignment{"web-1": a}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStatus(ctx, model.ContainerStatus{Container: "web-1", State: model.StateRunning}); err != nil {
		t.Fatal(err)
	}
	same("puts mirrored")
	select {
	case <-m.Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("no change signalled")
	}

	if err := s.ReplaceAssignments(ctx, map[string]model.Assignment{"web-1": a}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStatus(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	same("deletes mirrored")
	if got, _ := m.Snapshot(); len(got.Assign) != 0 || len(got.Status) != 0 || got.Spec == nil {
		t.Fatalf("mirror after deletes: %+v", got)
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	same("spec deletion mirrored")
}
