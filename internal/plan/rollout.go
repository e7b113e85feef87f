package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// DrainWait is how long a container stays out of DNS before it is stopped
// or replaced: the gateways cache a service's endpoints for one second
// (gateway.NewDNSResolver) and the resolvers follow the store within
// milliseconds, so after it no gateway sends it a new request.
const DrainWait = 2 * time.Second

// ReadyTimeout is how long a new instance may take to become healthy,
// beyond its health check's start_period, before it counts as failed.
const ReadyTimeout = 60 * time.Second

// DefHash identifies a service's definition: everything that changes the
// process it runs (command, env, workdir, user, port, health, volumes,
// resources, restart). Placement (replicas, host, ip), dependencies and
// the update and stop settings are left out: changing them restarts
// nothing. Two equal definitions hash alike after a trip through the store.
func DefHash(s spec.Service) string {
	s.Replicas, s.Host, s.Hosts, s.IP = 0, "", nil, netip.Addr{}
	s.DependsOn, s.Reschedule, s.RescheduleAfter = nil, nil, spec.Duration{}
	s.Update, s.StopGrace = nil, spec.Duration{}
	b, err := json.Marshal(s)
	if err != nil {
		// A spec.Service always encodes; keep the hash total anyway.
		b = fmt.Appendf(nil, "%#v", s)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// Surge is how many extra instances each service's update runs beside the
// old ones: update.parallelism while a start-first update moves instances.
func Surge(c *spec.Cluster, rollouts map[string]model.Rollout) map[string]int {
	out := map[string]int{}
	for _, s := range c.Services {
		r, ok := rollouts[s.Name]
		if !ok || r.Settled() || s.Update == nil || s.Update.Order != spec.OrderStartFirst {
			continue
		}
		out[s.Name] = max(1, s.Update.Parallelism)
	}
	return out
}

// Roll turns a placement (PlaceSurge, then Reschedule) into the
// assignments to write, moving every service's instances to its
// definition one batch at a time, and returns the rollout records to keep
// and when to look again (zero: only on the next change).
//
// prev are the assignments in the store, status the containers' reports,
// rollouts the records of the last pass. For each service whose definition
// (DefHash) differs from its record's To, a rollout starts from the
// definition its instances were moving to. A batch of update.parallelism
// instances is drained (Draining set: out of DNS and the gateways for
// DrainWait) and then switched to the target definition, which its agent
// does by stopping the old process and starting the new one; start-first
// updates first bring up Surge extra instances on the target, so capacity
// never drops. An instance is updated when it has been healthy for
// update.monitor; it failed when its process exited or restarted, or it
// is not healthy ReadyTimeout (plus start_period) after its batch began (a
// check failing while the process boots is not a failure yet). When failed instances exceed max_failure_ratio of
// the replicas, failure_action decides: rollback (the target becomes the
// previous definition, instance by instance again), pause, or continue.
//
// Containers of prev that placement dropped (scaled down, service removed,
// surge no longer needed) are drained first and dropped DrainWait later;
// their agent then stops them (SIGTERM, stop_grace, SIGKILL).
//
// Roll is pure: its inputs are not modified.
func Roll(c *spec.Cluster, prev, placed map[string]model.Assignment, status map[string]model.ContainerStatus,
	rollouts map[string]model.Rollout, now time.Time) (map[string]model.Assignment, map[string]model.Rollout, time.Time) {
	r := roller{now: now, prev: prev, status: status, next: maps.Clone(placed), out: map[string]model.Rollout{}}
	if r.next == nil {
		r.next = map[string]model.Assignment{}
	}
	for _, s := range c.Services {
		r.service(s, rollouts)
	}
	r.drainRemoved()
	return r.next, r.out, r.wake
}

type roller struct {
	now    time.Time
	prev   map[string]model.Assignment
	status map[string]model.ContainerStatus
	next   map[string]model.Assignment
	out    map[string]model.Rollout
	wake   time.Time
}

func (r *roller) wakeAt(t time.Time) {
	if !t.IsZero() && (r.wake.IsZero() || t.Before(r.wake)) {
		r.wake = t
	}
}

// record is the service's rollout after taking the file's definition in.
func (r *roller) record(s spec.Service, rollouts map[string]model.Rollout) model.Rollout {
	h := DefHash(s)
	rec, ok := rollouts[s.Name]
	if !ok {
		return model.Rollout{Service: s.Name, To: h, State: model.RolloutCompleted,
			Defs: map[string]spec.Service{h: s}, Started: r.now, Ended: r.now}
	}
	rec.Defs = maps.Clone(rec.Defs)
	if rec.Defs == nil {
		rec.Defs = map[string]spec.Service{}
	}
	rec.Failed = slices.Clone(rec.Failed)
	if rec.To == h {
		rec.Defs[h] = s
		return rec
	}
	from := rec.Target()
	if rec.State == model.RolloutPaused {
		from = rec.From // the paused definition failed: never go back to it
	}
	next := model.Rollout{Service: s.Name, From: from, To: h, State: model.RolloutRolling,
		Defs: map[string]spec.Service{h: s}, Started: r.now}
	if def, ok := rec.Defs[from]; ok {
		next.Defs[from] = def
	}
	if from == h || from == "" {
		next.State, next.From, next.Ended = model.RolloutCompleted, "", r.now
	}
	// Definitions that instances still run stay resolvable.
	for _, as := range r.prev {
		if def, ok := rec.Defs[as.Def]; ok && as.Service == s.Name {
			next.Defs[as.Def] = def
		}
	}
	return next
}

// slot is one container of a service in this pass.
type slot struct {
	name string
	as   model.Assignment
	st   model.ContainerStatus
	ok   bool // st was reported
}

// has says whether the status reports the process of the assignment: its
// definition on its host (not the old process of a switched slot).
func (sl slot) has() bool { return sl.ok && sl.st.Def == sl.as.Def && sl.st.Host == sl.as.Host }

func (r *roller) slots(s spec.Service) (regular, surge []slot) {
	for name, as := range r.next {
		if as.Service != s.Name {
			continue
		}
		st, ok := r.status[name]
		sl := slot{name: name, as: as, st: st, ok: ok}
		if as.Surge {
			surge = append(surge, sl)
		} else {
			regular = append(regular, sl)
		}
	}
	byIndex := func(x []slot) {
		sort.Slice(x, func(i, j int) bool { return x[i].as.Index < x[j].as.Index })
	}
	byIndex(regular)
	byIndex(surge)
	return regular, surge
}

func (r *roller) service(s spec.Service, rollouts map[string]model.Rollout) {
	rec := r.record(s, rollouts)
	target := rec.Target()
	// New containers (and ones placed before definitions were tracked)
	// start on the target.
	for name, as := range r.next {
		if as.Service == s.Name && as.Def == "" {
			as.Def = target
			r.next[name] = as
		}
	}
	defer func() {
		r.keepDefs(&rec)
		r.out[s.Name] = rec
	}()
	if rec.Settled() {
		r.dropSurge(s)
		return
	}
	u := s.Update
	if u == nil {
		u = &spec.Update{Parallelism: 1, Order: spec.OrderStopFirst, Monitor: spec.Duration{Duration: spec.DefaultMonitor}, FailureAction: spec.FailureRollback}
	}
	regular, surge := r.slots(s)
	stable := func(sl slot) bool {
		if sl.as.Def != target || !sl.has() || !sl.st.Ready() || !sl.as.Draining.IsZero() {
			return false
		}
		if at := sl.st.Updated.Add(u.Monitor.Duration); r.now.Before(at) {
			r.wakeAt(at)
			return false
		}
		return true
	}
	failed := func(sl slot) (bool, string) {
		if rec.State != model.RolloutRolling || sl.as.Def != rec.To || !sl.as.Draining.IsZero() {
			return false, ""
		}
		if sl.has() {
			switch {
			case sl.st.State == model.StateBackoff || sl.st.State == model.StateExited || sl.st.State == model.StateFailed:
				return true, fmt.Sprintf("%s %s: %s", sl.name, sl.st.State, sl.st.Message)
			case sl.st.Restarts > 0:
				return true, fmt.Sprintf("%s restarted %d times: %s", sl.name, sl.st.Restarts, sl.st.Message)
			}
		}
		if rec.BatchAt.IsZero() || (sl.has() && sl.st.Ready()) {
			return false, ""
		}
		limit := rec.BatchAt.Add(DrainWait + ReadyTimeout + startPeriod(s))
		if r.now.Before(limit) {
			r.wakeAt(limit)
			return false, ""
		}
		return true, fmt.Sprintf("%s not healthy within %s", sl.name, ReadyTimeout+startPeriod(s))
	}

	// Failures first: they may turn the rollout around.
	if rec.State == model.RolloutRolling {
		var why []string
		var names []string
		for _, sl := range append(slices.Clone(surge), regular...) {
			if bad, msg := failed(sl); bad {
				names = append(names, sl.name)
				why = append(why, msg)
			}
		}
		if len(names) > 0 && float64(len(names))/float64(max(1, s.Replicas)) > u.MaxFailureRatio {
			rec.Failed = names
			switch u.FailureAction {
			case spec.FailurePause:
				rec.State, rec.Message = model.RolloutPaused, "paused: "+joinShort(why)
				return
			case spec.FailureRollback:
				rec.State, rec.Message = model.RolloutRollingBack, "rolled back to the previous definition: "+joinShort(why)
				rec.BatchAt, rec.NextAt = time.Time{}, time.Time{}
				target = rec.From
				r.wakeAt(r.now.Add(100 * time.Millisecond))
			case spec.FailureContinue:
				rec.Message = "going on past failures: " + joinShort(why)
			}
		} else if len(names) > 0 {
			rec.Failed = names
		}
	}
	ignoreFailed := func(sl slot) bool {
		return rec.State == model.RolloutRolling && u.FailureAction == spec.FailureContinue && slices.Contains(rec.Failed, sl.name)
	}

	// Draining slots switch to the target once drained.
	switchDrained := func(list []slot) {
		for i, sl := range list {
			if sl.as.Def == target || sl.name == "" {
				continue
			}
			old, ok := r.prev[sl.name]
			if !ok || old.Draining.IsZero() || old.Def != sl.as.Def {
				continue
			}
			if until := old.Draining.Add(DrainWait); r.now.Before(until) {
				sl.as.Draining = old.Draining
				r.wakeAt(until)
			} else {
				sl.as.Def, sl.as.Draining = target, time.Time{}
			}
			r.next[sl.name] = sl.as
			list[i] = sl
		}
	}
	switchDrained(surge)
	switchDrained(regular)

	done := func(list []slot) bool {
		for _, sl := range list {
			if !stable(sl) && !ignoreFailed(sl) {
				return false
			}
		}
		return true
	}
	if done(regular) {
		if rec.State == model.RolloutRollingBack {
			rec.State = model.RolloutRolledBack
		} else {
			rec.State = model.RolloutCompleted
		}
		rec.Ended, rec.BatchAt, rec.NextAt = r.now, time.Time{}, time.Time{}
		r.dropSurge(s)
		return
	}

	inflight := 0
	for _, sl := range append(slices.Clone(surge), regular...) {
		draining := !sl.as.Draining.IsZero()
		if draining || (sl.as.Def == target && !stable(sl) && !ignoreFailed(sl)) {
			inflight++
		}
	}
	if inflight > 0 {
		if rec.BatchAt.IsZero() {
			rec.BatchAt = r.now // surge instances placed this pass
		}
		return
	}
	if !rec.BatchAt.IsZero() {
		rec.BatchAt, rec.NextAt = time.Time{}, r.now.Add(u.Delay.Duration)
	}
	if r.now.Before(rec.NextAt) {
		r.wakeAt(rec.NextAt)
		return
	}
	// The next batch: surge instances first, then the regular ones once
	// every surge instance serves the target.
	candidates := pending(surge, target)
	if len(surge) < Surge(&spec.Cluster{Services: []spec.Service{s}}, map[string]model.Rollout{s.Name: rec})[s.Name] {
		// A start-first update whose extra instances are not placed yet:
		// the next pass (this record's write) places them.
		r.wakeAt(r.now.Add(100 * time.Millisecond))
		return
	}
	if len(candidates) == 0 && done(surge) {
		candidates = pending(regular, target)
	}
	if len(candidates) == 0 {
		return
	}
	for _, sl := range candidates[:min(len(candidates), max(1, u.Parallelism))] {
		if _, existed := r.prev[sl.name]; existed {
			sl.as.Draining = r.now
			r.wakeAt(r.now.Add(DrainWait))
		} else {
			sl.as.Def = target
		}
		r.next[sl.name] = sl.as
	}
	rec.BatchAt = r.now
}

// pending lists the slots not yet on target, in index order.
func pending(list []slot, target string) []slot {
	var out []slot
	for _, sl := range list {
		if sl.as.Def != target && sl.as.Draining.IsZero() {
			out = append(out, sl)
		}
	}
	return out
}

// dropSurge takes the service's surge instances out of the placement: the
// drain of removed containers takes them down.
func (r *roller) dropSurge(s spec.Service) {
	for name, as := range r.next {
		if as.Service == s.Name && as.Surge {
			delete(r.next, name)
		}
	}
}

// keepDefs keeps the definitions the rollout or any instance still needs.
func (r *roller) keepDefs(rec *model.Rollout) {
	used := map[string]bool{rec.To: true, rec.From: true}
	for _, as := range r.next {
		if as.Service == rec.Service {
			used[as.Def] = true
		}
	}
	for _, as := range r.prev {
		if as.Service == rec.Service {
			used[as.Def] = true
		}
	}
	for h := range rec.Defs {
		if !used[h] {
			delete(rec.Defs, h)
		}
	}
}

// drainRemoved keeps every container placement dropped for DrainWait,
// marked Draining, before letting it go.
func (r *roller) drainRemoved() {
	for name, old := range r.prev {
		if _, kept := r.next[name]; kept {
			continue
		}
		if old.Draining.IsZero() {
			old.Draining = r.now
		}
		if until := old.Draining.Add(DrainWait); r.now.Before(until) {
			r.next[name] = old
			r.wakeAt(until)
		}
	}
}

func startPeriod(s spec.Service) time.Duration {
	if s.Health == nil {
		return 0
	}
	return s.Health.StartPeriod.Duration
}

func joinShort(why []string) string {
	if len(why) > 3 {
		why = append(why[:3:3], fmt.Sprintf("and %d more", len(why)-3))
	}
	out := ""
	for i, w := range why {
		if i > 0 {
			out += "; "
		}
		out += w
	}
	return out
}
