package api

import (
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// ShiftRequest is what `weft shift` sends.
type ShiftRequest struct {
	Settings model.ShiftSettings `json:"settings"`
	DryRun   bool                `json:"dry_run"`
}

// PlannedStep is one step of a shift's plan: the weights it sets and when,
// if every interval passes.
type PlannedStep struct {
	Step    int            `json:"step"`
	Percent int            `json:"percent"`
	Weights []model.Weight `json:"weights"`
	From    time.Time      `json:"from"`
	Until   time.Time      `json:"until"`
}

// ShiftAnswer is the shift as recorded (or, for a dry run, as it would be)
// and its plan.
type ShiftAnswer struct {
	Shift model.Shift   `json:"shift"`
	Plan  []PlannedStep `json:"plan"`
	// RollbackWithin is the longest a bad version takes to be rolled back
	// at one step: threshold x interval.
	RollbackWithin time.Duration `json:"rollback_within"`
}

// ShiftsAnswer is every route's last shift and every route's live
// weights where they differ from the file (by route).
type ShiftsAnswer struct {
	Shifts  map[string]model.Shift        `json:"shifts"`
	Weights map[string]model.RouteWeights `json:"weights"`
}
