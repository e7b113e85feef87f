package agent

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/runtime"
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

// An agent that supervises nothing yet (restarted while the store cannot be
// read) still reports the containers whose records are on its host.
func TestLocalStatusesIncludeUnadoptedRecords(t *testing.T) {
	root := t.TempDir()
	write := func(name string, pid int) {
		dir := filepath.Join(naming.HostStateDir(root, "c1", "host1"), "containers", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(runtime.Record{Container: name, Service: "svc", Pid: pid, Restarts: 2})
		if err := os.WriteFile(filepath.Join(dir, "record.json"), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("alive-1", os.Getpid())
	write("gone-1", 1<<30) // beyond pid_max: never a live process
	write("supervised-1", os.Getpid())
	a := &Agent{
		cfg:  Config{Cluster: "c1", Host: "host1", StateRoot: root},
		log:  slog.New(slog.DiscardHandler),
		self: spec.Host{Name: "host1"},
		rt:   runtimeSupervisor{&runtime.Runtime{StateRoot: root}},
		containers: map[string]*containerRun{
			"supervised-1": {status: model.ContainerStatus{Container: "supervised-1", Host: "host1", Pid: 99, State: model.StateRunning}},
		},
	}
	got := a.localStatuses()
	if len(got) != 3 {
		t.Fatalf("localStatuses = %v, want 3 containers", got)
	}
	if c := got["alive-1"]; c.State != model.StateRunning || c.Pid != os.Getpid() || c.Restarts != 2 || c.Host != "host1" {
		t.Errorf("alive-1 = %+v, want running with its recorded pid", c)
	}
	if c := got["gone-1"]; c.State != model.StateExited {
		t.Errorf("gone-1 = %+v, want exited", c)
	}
	if c := got["supervised-1"]; c.Pid != 99 {
		t.Errorf("supervised-1 = %+v, want the supervisor's status (pid 99)", c)
	}
}
