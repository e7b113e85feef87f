package store

import (
	"errors"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// TestShiftRecords starts a shift, refuses a second one of the same route
// while it runs, writes the leader's decision with the route's weights,
// refuses a deposed leader's write, and keeps gateway samples out of the
// cluster's root (they wake no watcher) but removes them with DeleteAll.
func TestShiftRecords(t *testing.T) {
	tc := startCluster(t, 1)
	a := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	sh := model.Shift{ID: "s1", ShiftSettings: model.ShiftSettings{Route: "/api/v1", To: "v2", Steps: []int{10, 100}},
		From: []model.Weight{{Service: "v1", Weight: 100}}, State: model.ShiftPending, Requested: at}
	if err := a.StartShift(ctx, sh); err != nil {
		t.Fatalf("StartShift: %v", err)
	}
	if err := a.StartShift(ctx, sh); !errors.Is(err, ErrShiftRunning) {
		t.Fatalf("a second StartShift of a running route: %v, want ErrShiftRunning", err)
	}
	lead, err := a.Lead(ctx, "host1")
	if err != nil {
		t.Fatal(err)
	}
	sh.State = model.ShiftRunning
	w := &model.RouteWeights{Route: sh.Route, Backends: []model.Weight{{Service: "v1", Weight: 90}, {Service: "v2", Weight: 10}}, By: "weft shift s1", At: at}
	if err := a.PutShift(ctx, sh, w, lead.Guard()); err != nil {
		t.Fatalf("PutShift: %v", err)
	}
	shifts, err := a.Shifts(ctx)
	if err != nil || shifts["/api/v1"].State != model.ShiftRunning {
		t.Fatalf("Shifts: %v, %v", shifts, err)
	}
	ws, err := a.RouteWeights(ctx)
	if err != nil || len(ws["/api/v1"].Backends) != 2 {
		t.Fatalf("RouteWeights: %v, %v", ws, err)
	}
	changes := a.Changes(ctx)
	if err := a.PutGatewaySample(ctx, model.GwSample{Gateway: "gateway-1", Route: "/api/v1", Service: "v2", At: at}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
		t.Fatalf("a gateway sample woke the cluster's watchers")
	case <-time.After(500 * time.Millisecond):
	}
	if got, err := a.GatewaySamples(ctx); err != nil || len(got) != 1 || got[0].Service != "v2" {
		t.Fatalf("GatewaySamples: %v, %v", got, err)
	}
	guard := lead.Guard()
	if err := lead.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	sh.State = model.ShiftRolledBack
	if err := a.PutShift(ctx, sh, nil, guard); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a deposed leader's PutShift: %v, want ErrNotLeader", err)
	}
	sh.State = model.ShiftPromoted
	if err := a.PutShift(ctx, sh, nil, Guard{}); err != nil {
		t.Fatal(err)
	}
	if ws, _ := a.RouteWeights(ctx); len(ws) != 0 {
		t.Errorf("PutShift with nil weights left %v", ws)
	}
	if err := a.StartShift(ctx, sh); err != nil {
		t.Errorf("StartShift after the last ended: %v", err)
	}
	if err := a.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.GatewaySamples(ctx); len(got) != 0 {
		t.Errorf("DeleteAll left gateway samples %v", got)
	}
}
