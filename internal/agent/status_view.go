package agent

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/store"
)

// A status answer must come within a few seconds whatever is down: the
// store read gets storeReadTimeout, every etcd member memberTimeout (asked
// in parallel), and the whole answer statusTimeout.
const (
	statusTimeout    = 2500 * time.Millisecond
	storeReadTimeout = 1500 * time.Millisecond
	memberTimeout    = 500 * time.Millisecond
)

// statusView says where a status answer's snapshot came from.
type statusView struct {
	stale   bool
	synced  time.Time // when a stale copy was last known current; zero if never
	readErr error     // why the store could not be read
}

// statusSnapshot reads the store with a short deadline. When it cannot (no
// quorum, this host cut off, not connected yet) it falls back to the last
// snapshot this agent mirrored, or to nothing but the bootstrap file.
func (a *Agent) statusSnapshot(ctx context.Context) (store.Snapshot, statusView) {
	st := a.store()
	if st == nil {
		return store.Snapshot{}, statusView{stale: true, readErr: errNotReady}
	}
	rctx, cancel := context.WithTimeout(ctx, storeReadTimeout)
	defer cancel()
	snap, err := st.Snapshot(rctx)
	if err == nil {
		return snap, statusView{}
	}
	view := statusView{stale: true, readErr: err}
	if last, synced, ok := st.LastView(); ok {
		snap, view.synced = last, synced
	} else {
		snap = store.Snapshot{}
	}
	return snap, view
}

// addStatusView marks an answer that did not come from the store and puts
// in this host's containers as its supervisors see them now.
func (a *Agent) addStatusView(out *api.Status, view statusView) {
	out.Source = a.self.Name
	if !view.stale {
		return
	}
	out.Stale = true
	if !view.synced.IsZero() {
		out.StaleSeconds = time.Since(view.synced).Seconds()
	}
	out.Unreachable = append(out.Unreachable, fmt.Sprintf("store: not readable from %s: %v", a.self.Name, view.readErr))
	local := a.localStatuses()
	for i, c := range out.Containers {
		if cur, ok := local[c.Container]; ok {
			out.Containers[i] = cur
			delete(local, c.Container)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(local)) {
		out.Containers = append(out.Containers, local[name])
	}
	// This agent answers, so its host is up whatever the copy says.
	for i := range out.Hosts {
		if out.Hosts[i].Name == a.self.Name {
			out.Hosts[i].Agent = "up"
			out.Hosts[i].AgentPid = os.Getpid()
		}
	}
}

// localStatuses is the live status of every container this agent
// supervises, and of every container whose runtime record is on this host
// but that no supervisor has adopted yet (an agent restarted while the store
// cannot be read adopts nothing until it can): its process runs on.
func (a *Agent) localStatuses() map[string]model.ContainerStatus {
	a.mu.Lock()
	runs := maps.Clone(a.containers)
	a.mu.Unlock()
	out := make(map[string]model.ContainerStatus, len(runs))
	for name, run := range runs {
		out[name] = run.snapshot()
	}
	if a.rt == nil {
		return out
	}
	recs, err := a.rt.Records(a.cfg.Cluster, a.self.Name)
	if err != nil {
		a.log.Warn("reading container records for status", "err", err)
		return out
	}
	for _, r := range recs {
		if _, ok := out[r.Container]; ok || r.Pid <= 0 {
			continue
		}
		st := model.ContainerStatus{
			Container: r.Container, Service: r.Service, Host: a.self.Name, Pid: r.Pid, Restarts: r.Restarts,
			Netns: naming.ContainerNetns(a.cfg.Cluster, a.self.Name, r.Container),
			State: model.StateRunning, Health: model.HealthStarting,
			Message: "from its runtime record: not supervised by this agent yet",
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", r.Pid)); err != nil {
			st.State, st.Message = model.StateExited, "its recorded process is gone"
		}
		out[r.Container] = st
	}
	return out
}

// serviceChanges is the last scale and the last real rollout (one that
// changed a definition) of every service, by service name.
func serviceChanges(snap store.Snapshot) []api.ServiceChange {
	by := map[string]*api.ServiceChange{}
	get := func(name string) *api.ServiceChange {
		if by[name] == nil {
			by[name] = &api.ServiceChange{Service: name}
		}
		return by[name]
	}
	for name, sc := range snap.Scales {
		get(name).Scale = &sc
	}
	for name, r := range snap.Rollouts {
		if r.From == "" {
			continue // the service's first definition: nothing rolled
		}
		rs := &api.RolloutStatus{From: r.From, To: r.To, State: r.State, Started: r.Started, Ended: r.Ended,
			Failed: r.Failed, Message: r.Message}
		if snap.Spec != nil {
			if svc, ok := snap.Spec.ServiceByName(name); ok {
				rs.Replicas = svc.Replicas
			}
		}
		for _, as := range snap.Assign {
			if as.Service == name && !as.Surge && as.Draining.IsZero() && as.Def == r.To {
				rs.Updated++
			}
		}
		get(name).Rollout = rs
	}
	out := make([]api.ServiceChange, 0, len(by))
	for _, name := range slices.Sorted(maps.Keys(by)) {
		out = append(out, *by[name])
	}
	return out
}
