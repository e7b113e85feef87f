package ui

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
)

func ct(name, host, state string, restarts int) model.ContainerStatus {
	svc := name[:strings.LastIndex(name, "-")]
	return model.ContainerStatus{Container: name, Service: svc, Host: host, State: state, Health: model.HealthHealthy, Restarts: restarts, IP: netip.MustParseAddr("10.10.0.5")}
}

func TestDiff(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	base := api.Status{
		Hosts:      []api.HostStatus{{Name: "host1", Agent: "up"}, {Name: "host2", Agent: "up"}},
		Containers: []model.ContainerStatus{ct("web-1", "host1", "running", 0), ct("web-2", "host2", "running", 0)},
		VIPs:       []api.VIPStatus{{Name: "front", Holder: "host1"}},
		Faults:     []api.FaultStatus{}, // read, none
	}
	with := func(f func(*api.Status)) api.Status {
		s := base
		s.Hosts = append([]api.HostStatus(nil), base.Hosts...)
		s.Containers = append([]model.ContainerStatus(nil), base.Containers...)
		s.VIPs = append([]api.VIPStatus(nil), base.VIPs...)
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name string
		cur  api.Status
		want []string // kind: text
	}{
		{"nothing changed", base, nil},
		{"host down", with(func(s *api.Status) { s.Hosts[1].Agent = "down" }), []string{"host: host2 is DOWN (its agent is not registered)"}},
		{"restart counted", with(func(s *api.Status) { s.Containers[0].Restarts = 1 }), []string{"restart: web-1 restarted on host1 (restarts: 1)"}},
		{"exited", with(func(s *api.Status) {
			s.Containers[0].State, s.Containers[0].Message = "exited", "process exited with status 137"
		}), []string{"state: web-1 running → exited: process exited with status 137"}},
		{"unhealthy", with(func(s *api.Status) { s.Containers[1].Health = model.HealthUnhealthy }), []string{"state: web-2 unhealthy"}},
		{"moved", with(func(s *api.Status) { s.Containers[1].Host = "host1" }), []string{"reschedule: web-2 moved host2 → host1"}},
		{"scaled", with(func(s *api.Status) {
			s.Containers = append(s.Containers, ct("web-3", "host2", "starting", 0))
			s.Changes = []api.ServiceChange{{Service: "web", Scale: &model.Scale{Service: "web", From: 2, To: 3, By: "weft scale", At: t0}}}
		}), []string{"added: web-3 added on host2", "scale: web scaled 2 → 3 by weft scale"}},
		{"removed", with(func(s *api.Status) { s.Containers = s.Containers[:1] }), []string{"removed: web-2 removed from host2"}},
		{"failover recorded", with(func(s *api.Status) {
			s.VIPs[0].Holder = "host2"
			s.VIPs[0].LastFailover = &api.VIPFailover{At: t0, From: "host1", To: "host2", Cause: "host1 lease expired", DurationMS: 812.4}
		}), []string{"failover: VIP front failed over host1 → host2 (host1 lease expired, 812 ms)"}},
		{"holder lost", with(func(s *api.Status) { s.VIPs[0].Holder = "" }), []string{"failover: VIP front has no holder (was host1)"}},
		{"fault injected", with(func(s *api.Status) {
			s.Faults = []api.FaultStatus{{ID: "f1", Kind: "kill", Target: "web", Mechanism: "SIGKILL", Expires: t0}}
		}), []string{"fault: chaos fault kill on web injected (SIGKILL), until 03:04:05"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(base, tc.cur, t1)
			var texts []string
			for _, e := range got {
				texts = append(texts, e.Kind+": "+e.Text)
			}
			if strings.Join(texts, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("Diff:\n got %q\nwant %q", texts, tc.want)
			}
		})
	}
}

func TestDiffFaultRemoved(t *testing.T) {
	f := api.FaultStatus{ID: "f1", Kind: "cut-host", Target: "host2"}
	prev := api.Status{Faults: []api.FaultStatus{f}}
	got := Diff(prev, api.Status{Faults: []api.FaultStatus{}}, time.Now())
	if len(got) != 1 || got[0].Text != "chaos fault cut-host on host2 removed" {
		t.Fatalf("fault removed: %+v", got)
	}
	// A status that could not read the store lists no faults: that is not
	// a removal.
	if got := Diff(prev, api.Status{}, time.Now()); len(got) != 0 {
		t.Fatalf("status without faults read: %+v", got)
	}
}

func TestHistoryOrdersRecordedEvents(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := api.Status{
		VIPs: []api.VIPStatus{{Name: "front", LastFailover: &api.VIPFailover{At: t0.Add(time.Minute), From: "host1", To: "host2", Cause: "cut"}}},
		Changes: []api.ServiceChange{{Service: "web",
			Scale:   &model.Scale{Service: "web", From: 1, To: 2, By: "file", At: t0},
			Rollout: &api.RolloutStatus{State: "completed", Started: t0.Add(2 * time.Minute), Updated: 2, Replicas: 2}}},
	}
	got := History(st)
	want := []string{EventScale, EventFailover, EventRollout}
	if len(got) != len(want) {
		t.Fatalf("History: %+v", got)
	}
	for i, e := range got {
		if e.Kind != want[i] {
			t.Errorf("event %d: kind %s, want %s (%+v)", i, e.Kind, want[i], got)
		}
	}
}

func TestPrependKeepsNewestFirstAndBounded(t *testing.T) {
	var kept []Event
	for i := range maxEvents + 10 {
		kept = prepend(kept, []Event{{Text: "a" + string(rune('0'+i%10))}, {Text: "b"}})
	}
	if len(kept) != maxEvents {
		t.Fatalf("kept %d events, want %d", len(kept), maxEvents)
	}
	if kept[0].Text != "b" || !strings.HasPrefix(kept[1].Text, "a") {
		t.Fatalf("newest first: got %q, %q", kept[0].Text, kept[1].Text)
	}
}

func TestShiftEvents(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	step := model.Event{At: t0, Message: "step 1: v2 at 10%"}
	back := model.Event{At: t0.Add(time.Minute), Message: "rolled back: error rate 4% > 1% twice"}
	sh := func(evs ...model.Event) map[string]model.Shift {
		return map[string]model.Shift{"/products": {ID: "s1", ShiftSettings: model.ShiftSettings{To: "v2"}, Events: evs}}
	}
	if got := ShiftEvents(nil, sh(step)); len(got) != 1 || got[0].Text != "shift of /products to v2: step 1: v2 at 10%" || !got[0].At.Equal(t0) {
		t.Fatalf("history: %+v", got)
	}
	got := ShiftEvents(sh(step), sh(step, back))
	if len(got) != 1 || got[0].Kind != EventShift || got[0].Text != "shift of /products to v2: rolled back: error rate 4% > 1% twice" {
		t.Fatalf("new line only: %+v", got)
	}
	if got := ShiftEvents(sh(step, back), sh(step, back)); len(got) != 0 {
		t.Fatalf("nothing new: %+v", got)
	}
}
