package shift

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// StartWait is how long a pending shift waits for a sample of every
// gateway before it starts without the missing ones.
const StartWait = 5 * time.Second

// pollSoon is when a pending shift looks at the samples again.
const pollSoon = 250 * time.Millisecond

// Inputs are what the leader read for one decision.
type Inputs struct {
	Now    time.Time
	Leader string // the host deciding
	// Samples are every gateway's counters of the shift's route and new
	// backend, by gateway container; Gateways the containers expected.
	Samples  map[string]model.GwSample
	Gateways []string
}

// Advance moves a shift on at in.Now: it starts a pending shift, closes
// an interval that is due, and decides pass (next step, or promotion after
// the last), fail (the step repeats) or rollback (threshold intervals
// failed). It returns the shift to store and when to call again (zero: it
// has ended). The live weights follow from the result (LiveWeights).
func Advance(sh model.Shift, in Inputs) (model.Shift, time.Time) {
	if model.ShiftDone(sh.State) {
		return sh, time.Time{}
	}
	sh = clone(sh)
	now := in.Now
	if sh.State == model.ShiftRunning && sh.Leader != in.Leader {
		sh.Events = append(sh.Events, model.Event{At: now, Message: fmt.Sprintf("leader %s resumed the shift at step %d (was %s)",
			in.Leader, sh.Step+1, or(sh.Leader, "nobody"))})
	}
	sh.Leader = in.Leader
	switch sh.State {
	case model.ShiftPending:
		if missing := waitingFor(in, sh.Requested); len(missing) > 0 && now.Before(sh.Requested.Add(StartWait)) {
			return sh, now.Add(pollSoon)
		}
		sh.State, sh.Started, sh.Step = model.ShiftRunning, now, 0
		startInterval(&sh, now, in.Samples)
		return sh, now.Add(sh.Interval)
	case model.ShiftRunning:
	default:
		sh.State, sh.Ended = model.ShiftRolledBack, now
		sh.Message = fmt.Sprintf("unknown state %q: rolled back", sh.State)
		return sh, time.Time{}
	}
	if sh.Current == nil {
		startInterval(&sh, now, in.Samples)
		return sh, now.Add(sh.Interval)
	}
	due := sh.Current.Start.Add(sh.Interval)
	if now.Before(due) {
		return sh, due
	}
	a := Analyse(sh.ShiftSettings, sh.Current.Baseline, in.Samples)
	done := *sh.Current
	done.End, done.Gateways, done.Total, done.Pass, done.Reason = now, a.Gateways, a.Total, a.Pass, a.Reason
	done.Baseline = nil
	sh.Intervals = append(sh.Intervals, done)
	sh.Current = nil
	switch {
	case a.Pass && sh.Step == len(sh.Steps)-1:
		sh.State, sh.Ended = model.ShiftPromoted, now
		sh.Message = fmt.Sprintf("promoted: %s takes 100%% of %s (%s)", sh.To, sh.Route, FormatWeights(LiveWeights(sh)))
		sh.Events = append(sh.Events, model.Event{At: now, Message: sh.Message})
		return sh, time.Time{}
	case a.Pass:
		sh.Step++
	default:
		sh.Failed++
		if sh.Failed >= sh.Threshold {
			sh.State, sh.Ended = model.ShiftRolledBack, now
			sh.Message = fmt.Sprintf("rolled back to %s after %d failed interval(s) (threshold %d): %s",
				FormatWeights(sh.From), sh.Failed, sh.Threshold, a.Reason)
			sh.Events = append(sh.Events, model.Event{At: now, Message: sh.Message})
			return sh, time.Time{}
		}
		sh.Events = append(sh.Events, model.Event{At: now, Message: fmt.Sprintf("interval failed (%d failed, rollback at %d): %s; step %d repeats",
			sh.Failed, sh.Threshold, a.Reason, sh.Step+1)})
	}
	startInterval(&sh, now, in.Samples)
	return sh, now.Add(sh.Interval)
}

// startInterval begins measuring the current step from the samples now.
// The step's weights are recorded with it; a new step is an event.
func startInterval(sh *model.Shift, now time.Time, samples map[string]model.GwSample) {
	weights := WeightsAt(sh.From, sh.To, sh.Steps[sh.Step])
	fresh := len(sh.Intervals) == 0 || sh.Intervals[len(sh.Intervals)-1].Step != sh.Step
	if fresh {
		sh.Events = append(sh.Events, model.Event{At: now, Message: fmt.Sprintf("step %d/%d: %s at %d%% (%s)",
			sh.Step+1, len(sh.Steps), sh.To, sh.Steps[sh.Step], FormatWeights(weights))})
	}
	sh.Current = &model.Interval{Step: sh.Step, Weights: weights, Start: now, Baseline: maps.Clone(samples)}
}

// LiveWeights are the weights the route takes while the shift is in its
// state: the step's, To alone once promoted, the old ones once rolled back
// (nil while pending: nothing changed yet).
func LiveWeights(sh model.Shift) []model.Weight {
	switch sh.State {
	case model.ShiftRunning:
		return WeightsAt(sh.From, sh.To, sh.Steps[min(sh.Step, len(sh.Steps)-1)])
	case model.ShiftPromoted:
		return WeightsAt(sh.From, sh.To, 100)
	case model.ShiftRolledBack:
		return slices.Clone(sh.From)
	}
	return nil
}

// waitingFor lists the expected gateways without a sample since t.
func waitingFor(in Inputs, t time.Time) []string {
	var out []string
	for _, gw := range in.Gateways {
		if s, ok := in.Samples[gw]; !ok || s.At.Before(t) {
			out = append(out, gw)
		}
	}
	return out
}

func clone(sh model.Shift) model.Shift {
	sh.Steps = slices.Clone(sh.Steps)
	sh.From = slices.Clone(sh.From)
	sh.Intervals = slices.Clone(sh.Intervals)
	sh.Events = slices.Clone(sh.Events)
	if sh.Current != nil {
		c := *sh.Current
		c.Baseline = maps.Clone(c.Baseline)
		sh.Current = &c
	}
	return sh
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
