package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/plan"
)

func running(name, host string) model.ContainerStatus {
	return model.ContainerStatus{Container: name, Host: host, State: model.StateRunning, Health: model.HealthHealthy}
}

func TestCountReady(t *testing.T) {
	planned := map[string]string{"a-1": "host1", "b-1": "host2"}
	tests := []struct {
		name      string
		have      []model.ContainerStatus
		ready     int
		converged bool
	}{
		{"the plan, healthy", []model.ContainerStatus{running("a-1", "host1"), running("b-1", "host2")}, 2, true},
		{"one missing", []model.ContainerStatus{running("a-1", "host1")}, 1, false},
		{"on another host", []model.ContainerStatus{running("a-1", "host1"), running("b-1", "host3")}, 1, false},
		{"one not healthy", []model.ContainerStatus{running("a-1", "host1"), {Container: "b-1", Host: "host2", State: "starting"}}, 1, false},
		{"one too many", []model.ContainerStatus{running("a-1", "host1"), running("b-1", "host2"), running("c-1", "host1")}, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready, converged := countReady(api.Status{Containers: tt.have}, planned)
			if ready != tt.ready || converged != tt.converged {
				t.Errorf("countReady = %d, %v; want %d, %v", ready, converged, tt.ready, tt.converged)
			}
		})
	}
}

func TestDescribeChanges(t *testing.T) {
	tests := []struct {
		ch   model.Changes
		want string
	}{
		{model.Changes{}, ""},
		{model.Changes{Added: []string{"a-1", "a-2"}}, " (added a-1 a-2)"},
		{model.Changes{Removed: []string{"b-1"}, Moved: []string{"c-1"}, Updated: []string{"web"}}, " (removed b-1; moved c-1; rolling update of web)"},
	}
	for _, tt := range tests {
		if got := DescribeChanges(tt.ch); got != tt.want {
			t.Errorf("DescribeChanges(%+v) = %q, want %q", tt.ch, got, tt.want)
		}
	}
}

type statusOf api.Status

func (s statusOf) Status(context.Context) (api.Status, error) { return api.Status(s), nil }

// TestWaitConverged: it returns once the status shows the plan, healthy and
// from the store; a rolled-back update and the timeout are errors that say
// what is wrong.
func TestWaitConverged(t *testing.T) {
	c := loadThreeHosts(t)
	planned := map[string]string{"api-1": "host1"}
	api1, ok := c.ServiceByName("api")
	if !ok {
		t.Fatal("the example has no service api")
	}
	rolledBack := &api.RolloutStatus{To: plan.DefHash(api1), State: model.RolloutRolledBack, Message: "rolled back: api-1 did not become healthy"}
	tests := []struct {
		name    string
		st      api.Status
		ready   int
		wantErr string
	}{
		{name: "converged", st: api.Status{Applied: true, Containers: []model.ContainerStatus{running("api-1", "host1")}}, ready: 1},
		{name: "stale is not converged", st: api.Status{Applied: true, Stale: true, Containers: []model.ContainerStatus{running("api-1", "host1")}}, ready: 1, wantErr: "not every service became healthy within"},
		{name: "not healthy", st: api.Status{Applied: true, Containers: []model.ContainerStatus{{Container: "api-1", Host: "host1", State: "starting", Health: "unknown"}}}, wantErr: "  api-1 on host1: state starting, health unknown"},
		{name: "rolled back", st: api.Status{Applied: true, Containers: []model.ContainerStatus{running("api-1", "host1")}, Changes: []api.ServiceChange{{Service: "api", Rollout: rolledBack}}}, ready: 1, wantErr: "the update did not go through:\n  service api: the new definition is not running, the update rolled back: api-1 did not become healthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var said []string
			say := func(format string, args ...any) { said = append(said, format) }
			ready, err := WaitConverged(context.Background(), statusOf(tt.st), c, api.ApplyResult{Planned: planned}, 50*time.Millisecond, say)
			if ready != tt.ready {
				t.Errorf("ready = %d, want %d", ready, tt.ready)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("WaitConverged error = %v, want %q", err, tt.wantErr)
			}
			if len(said) != 1 {
				t.Errorf("said %d lines, want one (an unchanged count is said once)", len(said))
			}
		})
	}
}
