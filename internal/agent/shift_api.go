package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/shift"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// handleStartShift records a shift request for the leader to drive (or,
// for a dry run, only answers its plan). It checks the request against the
// applied file and the route's live weights first.
func (a *Agent) handleStartShift(w http.ResponseWriter, r *http.Request) {
	st := a.store()
	if st == nil {
		writeError(w, http.StatusServiceUnavailable, errNotReady)
		return
	}
	var req api.ShiftRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("decoding shift request: %w", err))
		return
	}
	s := req.Settings
	if err := shift.Check(s); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	c, err := st.Spec(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	if c == nil {
		writeError(w, http.StatusConflict, errors.New("cluster has no applied file yet; run weft up first"))
		return
	}
	live, err := st.RouteWeights(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	from, fromFile, err := shift.CheckTarget(s, c, live)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	now := time.Now().UTC()
	sh := model.Shift{ID: now.Format("20060102-150405"), ShiftSettings: s, From: from, FromFile: fromFile,
		State: model.ShiftPending, Requested: now}
	ans := api.ShiftAnswer{Shift: sh, RollbackWithin: time.Duration(s.Threshold) * s.Interval}
	for _, p := range shift.Plan(s, from, now) {
		ans.Plan = append(ans.Plan, api.PlannedStep{Step: p.Step, Percent: p.Percent, Weights: p.Weights, From: p.From, Until: p.Until})
	}
	if !req.DryRun {
		if err := st.StartShift(r.Context(), sh); err != nil {
			code := http.StatusServiceUnavailable
			if errors.Is(err, store.ErrShiftRunning) {
				code = http.StatusConflict
			}
			writeError(w, code, err)
			return
		}
		a.log.Info("traffic shift requested", "route", s.Route, "to", s.To, "steps", s.Steps, "interval", s.Interval)
	}
	writeJSON(w, http.StatusOK, ans)
}

// handleShifts answers every route's last shift and the live weights.
func (a *Agent) handleShifts(w http.ResponseWriter, r *http.Request) {
	st := a.store()
	if st == nil {
		writeError(w, http.StatusServiceUnavailable, errNotReady)
		return
	}
	shifts, err := st.Shifts(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	live, err := st.RouteWeights(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ShiftsAnswer{Shifts: shifts, Weights: live})
}

// reconcileWeights applies the rule of shift.Reconcile for a file being
// applied: it drops the live-weights records the file overrides and says
// what happens to each route whose live weights differ from the file.
func (a *Agent) reconcileWeights(ctx context.Context, st *store.Store, c *spec.Cluster) ([]string, error) {
	live, err := st.RouteWeights(ctx)
	if err != nil || len(live) == 0 {
		return nil, err
	}
	shifts, err := st.Shifts(ctx)
	if err != nil {
		return nil, err
	}
	d := shift.Reconcile(c, live, shifts)
	if err := st.DeleteRouteWeights(ctx, d.Drop); err != nil {
		return nil, err
	}
	return d.Notes, nil
}
