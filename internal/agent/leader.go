package agent

import (
	"context"
	"maps"
	"reflect"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/plan"
	"github.com/weft-dev/weft/internal/store"
)

// leaderLoop campaigns for leadership (managers only); while leader, it keeps the
// assignments equal to the placement of the applied file. Placement keeps
// every assignment that still fits, so re-applying never moves anything.
func (a *Agent) leaderLoop(ctx context.Context, st *store.Store) error {
	for ctx.Err() == nil {
		l, err := st.Lead(ctx, a.self.Name)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.log.Warn("campaigning for leadership", "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		a.log.Info("leading placement", "host", a.self.Name)
		// Traffic shifts are driven by the leader too, alongside placement.
		shifts, stop := context.WithCancel(l.Context())
		var wg sync.WaitGroup
		wg.Go(func() { a.shiftWhileLeader(shifts, st, l) })
		a.placeWhileLeader(l.Context(), st, l)
		stop()
		wg.Wait()
	}
	return nil
}

// placeWhileLeader places on every store change, on the resync tick, and at
// the moment a down host's containers become due to move (a timer, so a
// move happens reschedule_after after the host went down, not at the next
// tick).
func (a *Agent) placeWhileLeader(ctx context.Context, st *store.Store, l *store.Leadership) {
	changes := st.Changes(ctx)
	tick := time.NewTicker(resyncInterval)
	defer tick.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	// Refused assignments are left out of what placement starts from, so
	// the leader writes a valid one over each that the file still wants.
	vet := &vetter{cluster: a.cfg.Cluster, log: a.log}
	for {
		wake, err := a.placeOnce(ctx, st, l, vet)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("placing containers", "err", err)
			// A store that failed to answer (a member just lost) is asked
			// again soon rather than at the next change or tick.
			wake = time.Now().Add(placeRetry)
		}
		due.Stop()
		if !wake.IsZero() {
			due.Reset(max(time.Until(wake), 0))
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
		case <-tick.C:
		case <-due.C:
		}
	}
}

// placeRetry is how soon a failed placement pass is tried again.
const placeRetry = 500 * time.Millisecond

// placeOnce brings the down-since times and the assignments up to date and
// returns when to place again for a down host's containers (zero: no need).
func (a *Agent) placeOnce(ctx context.Context, st *store.Store, l *store.Leadership, vet *vetter) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	view, err := st.LeaderView(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if view.Spec, view.Assign, _ = vet.vet(view.Spec, view.Assign, view.Bad); view.Spec == nil {
		return time.Time{}, nil
	}
	c := view.Spec
	now := time.Now()
	live := view.LiveHosts()
	down := plan.NextDown(c, live, view.DownSince, now, hostLeaseTTL, a.lastHeard(c))
	if !maps.EqualFunc(down, view.DownSince, time.Time.Equal) {
		for host := range down {
			if _, was := view.DownSince[host]; !was {
				a.log.Info("host down", "host", host)
			}
		}
		for host := range view.DownSince {
			if _, still := down[host]; !still {
				a.log.Info("host back", "host", host, "down_for", now.Sub(view.DownSince[host]).Round(time.Millisecond))
			}
		}
		if err := st.ReplaceDown(ctx, view.DownSince, down, l.Guard()); err != nil {
			return time.Time{}, err
		}
	}
	prev := view.Assign
	next, err := plan.PlaceSurge(c, prev, plan.Surge(c, view.Rollouts))
	if err != nil {
		return time.Time{}, err
	}
	next, wake := plan.Reschedule(c, next, plan.Liveness{Now: now, Live: live, DownSince: down})
	next, rollouts, rollWake := plan.Roll(c, prev, next, view.Status, view.Rollouts, now)
	if !rollWake.IsZero() && (wake.IsZero() || rollWake.Before(wake)) {
		wake = rollWake
	}
	if reflect.DeepEqual(prev, next) && reflect.DeepEqual(view.Rollouts, rollouts) {
		return wake, nil
	}
	if err := st.ReplacePlacement(ctx, prev, next, view.Rollouts, rollouts, l.Guard()); err != nil {
		return wake, err
	}
	for name, r := range rollouts {
		if old, ok := view.Rollouts[name]; !ok || old.State != r.State || old.To != r.To {
			a.log.Info("rollout", "service", name, "state", r.State, "from", r.From, "to", r.To, "message", r.Message)
		}
	}
	if d := plan.Diff(prev, next); d.Count() > 0 {
		a.log.Info("placement changed", "added", d.Added, "removed", d.Removed, "moved", d.Moved)
	}
	return wake, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
