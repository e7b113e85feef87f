package agent

import (
	"errors"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

func TestAddStatusViewMarksStaleAndPutsInLocalContainers(t *testing.T) {
	a := &Agent{self: spec.Host{Name: "host1"}, containers: map[string]*containerRun{
		"one-1": {status: model.ContainerStatus{Container: "one-1", Host: "host1", Pid: 42, State: model.StateRunning}},
		"new-1": {status: model.ContainerStatus{Container: "new-1", Host: "host1", Pid: 43, State: model.StateStarting}},
	}}
	copyOf := func() api.Status {
		return api.Status{
			Hosts: []api.HostStatus{{Name: "host1", Agent: "down"}, {Name: "host2", Agent: "up"}},
			Containers: []model.ContainerStatus{
				{Container: "one-1", Host: "host1", Pid: 7, State: model.StateRunning},
				{Container: "two-1", Host: "host2", Pid: 8, State: model.StateRunning},
			},
		}
	}

	fresh := copyOf()
	a.addStatusView(&fresh, statusView{})
	if fresh.Stale || fresh.Source != "host1" || fresh.Containers[0].Pid != 7 || len(fresh.Unreachable) != 0 {
		t.Fatalf("a store answer was changed: %+v", fresh)
	}

	stale := copyOf()
	a.addStatusView(&stale, statusView{stale: true, synced: time.Now().Add(-10 * time.Second), readErr: errors.New("etcdserver: no leader")})
	if !stale.Stale || stale.StaleSeconds < 9 || stale.StaleSeconds > 60 {
		t.Errorf("stale %v, %.1fs old; want stale about 10s old", stale.Stale, stale.StaleSeconds)
	}
	pids := map[string]int{}
	for _, c := range stale.Containers {
		pids[c.Container] = c.Pid
	}
	if pids["one-1"] != 42 || pids["new-1"] != 43 || pids["two-1"] != 8 || len(pids) != 3 {
		t.Errorf("containers %v: want host1's from its supervisors (42, 43) and host2's from the copy (8)", pids)
	}
	if stale.Hosts[0].Agent != "up" || stale.Hosts[1].Agent != "up" {
		t.Errorf("hosts %+v: the answering host must be up, the others as the copy says", stale.Hosts)
	}
	if len(stale.Unreachable) != 1 || stale.Unreachable[0] != "store: not readable from host1: etcdserver: no leader" {
		t.Errorf("unreachable = %q", stale.Unreachable)
	}
}
