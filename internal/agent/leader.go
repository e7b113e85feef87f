package agent

import (
	"context"
	"reflect"
	"time"

	"github.com/weft-dev/weft/internal/plan"
	"github.com/weft-dev/weft/internal/store"
)

// leaderLoop campaigns for leadership; while leader, it keeps the
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
		a.placeWhileLeader(l.Context(), st, l)
	}
	return nil
}

func (a *Agent) placeWhileLeader(ctx context.Context, st *store.Store, l *store.Leadership) {
	changes := st.Changes(ctx)
	tick := time.NewTicker(resyncInterval)
	defer tick.Stop()
	for {
		if err := a.placeOnce(ctx, st, l); err != nil && ctx.Err() == nil {
			a.log.Warn("placing containers", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
		case <-tick.C:
		}
	}
}

func (a *Agent) placeOnce(ctx context.Context, st *store.Store, l *store.Leadership) error {
	c, err := st.Spec(ctx)
	if err != nil || c == nil {
		return err
	}
	prev, _, err := st.Assignments(ctx)
	if err != nil {
		return err
	}
	next, err := plan.Place(c, prev)
	if err != nil {
		return err
	}
	if reflect.DeepEqual(prev, next) {
		return nil
	}
	d := plan.Diff(prev, next)
	a.log.Info("placement changed", "added", d.Added, "removed", d.Removed, "moved", d.Moved)
	return st.ReplaceAssignments(ctx, prev, next, l.Guard())
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
