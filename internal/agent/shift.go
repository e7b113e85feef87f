package agent

import (
	"context"
	"reflect"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/shift"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// shiftRetry is how soon a failed shift pass is tried again.
const shiftRetry = 500 * time.Millisecond

// shiftWhileLeader drives the traffic shifts while this agent leads: on
// every store change and when an interval is due, it reads each shift, the
// gateways' samples and the file, lets shift.Advance decide, and writes the
// decision with the route's live weights in one guarded transaction. A new
// leader starts here from the stored records, so a shift goes on after a
// leader change.
func (a *Agent) shiftWhileLeader(ctx context.Context, st *store.Store, l *store.Leadership) {
	changes := st.Changes(ctx)
	due := time.NewTimer(0)
	defer due.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
		case <-due.C:
		}
		wake, err := a.shiftOnce(ctx, st, l)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("driving traffic shifts", "err", err)
			wake = time.Now().Add(shiftRetry)
		}
		due.Stop()
		if !wake.IsZero() {
			due.Reset(max(time.Until(wake), 0))
		}
	}
}

// shiftOnce advances every shift that has not ended and returns when to
// look again (zero: none is running).
func (a *Agent) shiftOnce(ctx context.Context, st *store.Store, l *store.Leadership) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	shifts, err := st.Shifts(ctx)
	if err != nil {
		return time.Time{}, err
	}
	active := 0
	for _, sh := range shifts {
		if !model.ShiftDone(sh.State) {
			active++
		}
	}
	if active == 0 {
		return time.Time{}, nil
	}
	c, err := st.Spec(ctx)
	if err != nil || c == nil {
		return time.Time{}, err
	}
	live, err := st.RouteWeights(ctx)
	if err != nil {
		return time.Time{}, err
	}
	samples, err := st.GatewaySamples(ctx)
	if err != nil {
		return time.Time{}, err
	}
	assign, _, err := st.Assignments(ctx)
	if err != nil {
		return time.Time{}, err
	}
	var gateways []string
	for _, as := range assign {
		if svc, ok := c.ServiceByName(as.Service); ok && isGateway(svc) && as.Draining.IsZero() {
			gateways = append(gateways, as.Container)
		}
	}
	var wake time.Time
	ended := 0
	for route, sh := range shifts {
		if model.ShiftDone(sh.State) {
			continue
		}
		now := time.Now().UTC()
		next, w := shift.Advance(sh, shift.Inputs{Now: now, Leader: a.self.Name, Samples: samplesOf(samples, sh), Gateways: gateways})
		if !w.IsZero() && (wake.IsZero() || w.Before(wake)) {
			wake = w
		}
		if model.ShiftDone(next.State) {
			ended++
		}
		if reflect.DeepEqual(next, sh) {
			continue
		}
		next.LastUpdated = now
		if err := st.PutShift(ctx, next, liveRecord(c, next, live[route], now), l.Guard()); err != nil {
			return time.Time{}, err
		}
		if next.State != sh.State || next.Step != sh.Step || len(next.Intervals) != len(sh.Intervals) {
			last := ""
			if n := len(next.Intervals); n > 0 {
				last = next.Intervals[n-1].Reason
			}
			a.log.Info("traffic shift", "route", route, "to", next.To, "state", next.State, "step", next.Step+1,
				"weights", shift.FormatWeights(shift.LiveWeights(next)), "last_interval", last, "message", next.Message)
		}
	}
	if ended == active && len(samples) > 0 {
		if err := st.DeleteGatewaySamples(ctx); err != nil {
			a.log.Warn("removing gateway samples after the last shift", "err", err)
		}
	}
	return wake, nil
}

// samplesOf are the samples of the shift's route and new backend, by
// gateway container.
func samplesOf(all []model.GwSample, sh model.Shift) map[string]model.GwSample {
	out := map[string]model.GwSample{}
	for _, s := range all {
		if s.Route == sh.Route && s.Service == sh.To {
			out[s.Gateway] = s
		}
	}
	return out
}

// liveRecord is the route's live-weights record that follows from the
// shift: the step's weights while running, To's once promoted, the old
// record (none when the file was their source) once rolled back, and the
// present one while pending.
func liveRecord(c *spec.Cluster, sh model.Shift, present model.RouteWeights, now time.Time) *model.RouteWeights {
	file, _ := shift.FileWeights(c, sh.Route)
	switch sh.State {
	case model.ShiftRunning, model.ShiftPromoted:
		return &model.RouteWeights{Route: sh.Route, Backends: shift.LiveWeights(sh), File: file, By: "weft shift " + sh.ID, At: now}
	case model.ShiftRolledBack:
		if sh.FromFile {
			return nil
		}
		return &model.RouteWeights{Route: sh.Route, Backends: sh.From, File: file, By: "rollback of weft shift " + sh.ID, At: now}
	}
	if present.Route == "" {
		return nil
	}
	return &present
}
