package store

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// The down-since clock survives a change of leader, and only the leader
// writes it.
func TestDownSinceSurvivesLeaderChange(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	a := tc.connect(t, tc.endpoints(), cluster)
	b := tc.connect(t, tc.endpoints(), cluster)
	ctx := testContext(t)

	leaderA, err := a.Lead(ctx, "host2")
	if err != nil {
		t.Fatalf("Lead: %v", err)
	}
	since := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	first := map[string]time.Time{"host1": since}
	if err := a.ReplaceDown(ctx, nil, first, leaderA.Guard()); err != nil {
		t.Fatalf("ReplaceDown as leader: %v", err)
	}
	staleGuard := leaderA.Guard()
	if err := leaderA.Resign(ctx); err != nil {
		t.Fatalf("Resign: %v", err)
	}

	leaderB, err := b.Lead(ctx, "host3")
	if err != nil {
		t.Fatalf("Lead by the successor: %v", err)
	}
	defer leaderB.Resign(context.Background())
	view, err := b.LeaderView(ctx)
	if err != nil {
		t.Fatalf("LeaderView: %v", err)
	}
	if !reflect.DeepEqual(view.DownSince, first) {
		t.Fatalf("the successor reads down-since %v, want %v (the clock must not restart)", view.DownSince, first)
	}
	if err := a.ReplaceDown(ctx, first, nil, staleGuard); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("ReplaceDown with a deposed leader's guard = %v, want ErrNotLeader", err)
	}
	second := map[string]time.Time{"host3": since.Add(time.Second)}
	if err := b.ReplaceDown(ctx, view.DownSince, second, leaderB.Guard()); err != nil {
		t.Fatalf("ReplaceDown (host1 back, host3 down): %v", err)
	}
	got, err := b.DownSince(ctx)
	if err != nil || !reflect.DeepEqual(got, second) {
		t.Fatalf("DownSince = %v, %v; want %v (host1 cleared)", got, err, second)
	}
}

// A status is written only from the host the container is assigned to; a
// stale copy's report after a move is refused.
func TestPutStatusAssignedRefusesStaleHost(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	as := model.Assignment{Container: "api-1", Service: "api", Index: 1, Host: "host1", IP: netip.MustParseAddr("10.10.0.5")}
	report := func(host, state string) error {
		return s.PutStatusAssigned(ctx, model.ContainerStatus{Container: "api-1", Service: "api", Host: host, IP: as.IP, State: state})
	}
	if err := report("host1", model.StateRunning); !errors.Is(err, ErrNotAssignedHere) {
		t.Fatalf("report before any assignment = %v, want ErrNotAssignedHere", err)
	}
	if err := s.ReplaceAssignments(ctx, nil, map[string]model.Assignment{"api-1": as}, Guard{}); err != nil {
		t.Fatal(err)
	}
	if err := report("host1", model.StateRunning); err != nil {
		t.Fatalf("report from the assigned host: %v", err)
	}
	moved := as
	moved.Host, moved.Home = "host2", "host1"
	if err := s.ReplaceAssignments(ctx, map[string]model.Assignment{"api-1": as}, map[string]model.Assignment{"api-1": moved}, Guard{}); err != nil {
		t.Fatal(err)
	}
	if err := report("host2", model.StateStarting); err != nil {
		t.Fatalf("report from the new host: %v", err)
	}
	if err := report("host1", model.StateRunning); !errors.Is(err, ErrNotAssignedHere) {
		t.Fatalf("report from the stale host = %v, want ErrNotAssignedHere", err)
	}
	st, err := s.Statuses(ctx)
	if err != nil || st["api-1"].Host != "host2" || st["api-1"].State != model.StateStarting {
		t.Fatalf("status = %+v, %v; want the new host's", st["api-1"], err)
	}
	// Deleting is refused while the container is assigned anywhere.
	if err := s.DeleteStatusUnassigned(ctx, "api-1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Statuses(ctx); st["api-1"].Host != "host2" {
		t.Fatalf("a moved container's status was deleted: %+v", st)
	}
	if err := s.ReplaceAssignments(ctx, map[string]model.Assignment{"api-1": moved}, nil, Guard{}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStatusUnassigned(ctx, "api-1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Statuses(ctx); len(st) != 0 {
		t.Fatalf("status of a removed container kept: %+v", st)
	}
}
