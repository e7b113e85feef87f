package store

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// TestPlacementAndRolloutsLandTogether writes assignments and rollout
// records in one guarded transaction, reads them back from a snapshot, the
// leader's view and a mirror, and checks that a deposed leader's write
// changes neither.
func TestPlacementAndRolloutsLandTogether(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	a := tc.connect(t, tc.endpoints(), cluster)
	ctx := testContext(t)
	mirror := a.Mirror(ctx)

	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	assign := map[string]model.Assignment{
		"web-1": {Container: "web-1", Service: "web", Index: 1, Host: "host1", IP: netip.MustParseAddr("10.10.0.5"), Def: "new"},
		"web-2": {Container: "web-2", Service: "web", Index: 2, Host: "host2", IP: netip.MustParseAddr("10.10.0.6"), Def: "old", Draining: at},
	}
	rolls := map[string]model.Rollout{"web": {Service: "web", From: "old", To: "new", State: model.RolloutRolling, Started: at, BatchAt: at,
		Defs: map[string]spec.Service{"old": {Name: "web", Command: []string{"/bin/web", "-v1"}}, "new": {Name: "web", Command: []string{"/bin/web", "-v2"}}}}}
	lead, err := a.Lead(ctx, "host1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ReplacePlacement(ctx, nil, assign, nil, rolls, lead.Guard()); err != nil {
		t.Fatalf("ReplacePlacement: %v", err)
	}
	if err := a.PutScales(ctx, []model.Scale{{Service: "web", From: 1, To: 2, By: model.ScaledByCommand, At: at}}); err != nil {
		t.Fatal(err)
	}
	snap, err := a.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snap.Assign, assign) || !reflect.DeepEqual(snap.Rollouts, rolls) || snap.Scales["web"].By != model.ScaledByCommand {
		t.Fatalf("snapshot: assign %v rollouts %v scales %v", snap.Assign, snap.Rollouts, snap.Scales)
	}
	view, err := a.LeaderView(ctx)
	if err != nil || !reflect.DeepEqual(view.Rollouts, rolls) {
		t.Fatalf("leader view rollouts %v, %v", view.Rollouts, err)
	}
	eventually(t, 5*time.Second, "the mirror to hold the rollout and the scale", func() bool {
		m, ok := mirror.Snapshot()
		return ok && reflect.DeepEqual(m.Rollouts, rolls) && m.Scales["web"].To == 2
	})

	guard := lead.Guard()
	if err := lead.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	err = a.ReplacePlacement(ctx, assign, nil, rolls, nil, guard)
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("ReplacePlacement with a deposed leader's guard = %v; want ErrNotLeader", err)
	}
	if snap, _ := a.Snapshot(ctx); !reflect.DeepEqual(snap.Assign, assign) || !reflect.DeepEqual(snap.Rollouts, rolls) {
		t.Fatalf("a failed guarded write changed the store")
	}
	// Deleting a service's record with its assignments.
	if err := a.ReplacePlacement(ctx, assign, nil, rolls, nil, Guard{}); err != nil {
		t.Fatal(err)
	}
	if snap, _ := a.Snapshot(ctx); len(snap.Assign) != 0 || len(snap.Rollouts) != 0 {
		t.Fatalf("after deleting: %v %v", snap.Assign, snap.Rollouts)
	}
}
