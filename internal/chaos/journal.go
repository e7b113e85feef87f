package chaos

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Journal statuses and run statuses, as Chaos Toolkit writes them.
const (
	StatusCompleted   = "completed"
	StatusFailed      = "failed"
	StatusAborted     = "aborted"
	StatusInterrupted = "interrupted"

	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// Version is written as the journal's chaoslib-version: weft's runner, not
// chaostoolkit-lib, wrote it.
const Version = "weft-chaos/1"

// Journal is the record of one run, in Chaos Toolkit's shape (the field
// names and status values of chaoslib/run.py). Weft adds "weft": the
// verdict and the faults applied.
type Journal struct {
	mu sync.Mutex

	ChaoslibVersion string         `json:"chaoslib-version"`
	Platform        string         `json:"platform"`
	Node            string         `json:"node"`
	Experiment      map[string]any `json:"experiment"`
	Start           string         `json:"start"`
	End             string         `json:"end"`
	Duration        float64        `json:"duration"`
	Status          string         `json:"status"`
	Deviated        bool           `json:"deviated"`
	SteadyStates    SteadyStates   `json:"steady_states"`
	Run             []*Run         `json:"run"`
	Rollbacks       []*Run         `json:"rollbacks"`
	Weft            *WeftReport    `json:"weft,omitempty"`
}

// SteadyStates holds the hypothesis' runs.
type SteadyStates struct {
	Before *State   `json:"before"`
	After  *State   `json:"after"`
	During []*State `json:"during"`
}

// State is one run of the steady-state hypothesis.
type State struct {
	SteadyStateMet bool   `json:"steady_state_met"`
	Probes         []*Run `json:"probes"`
}

// Run is one activity's run.
type Run struct {
	Activity     map[string]any `json:"activity"`
	Output       any            `json:"output"`
	Status       string         `json:"status"`
	Exception    []string       `json:"exception,omitempty"`
	Start        string         `json:"start"`
	End          string         `json:"end"`
	Duration     float64        `json:"duration"`
	ToleranceMet *bool          `json:"tolerance_met,omitempty"`
}

// WeftReport is weft's addition to the journal: which part went wrong, and
// the faults this run applied (with the mechanism each used).
type WeftReport struct {
	Verdict string           `json:"verdict"`
	Before  string           `json:"before"` // met | not met | not run
	Method  string           `json:"method"` // ok | failed: <activity> | not run | interrupted
	After   string           `json:"after"`  // met | not met | not run
	Faults  []map[string]any `json:"faults,omitempty"`
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000+00:00") }

// MarshalJSON locks the journal while encoding it.
func (j *Journal) MarshalJSON() ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	type plain Journal
	return json.Marshal((*plain)(j))
}

// Passed reports whether the run proves the hypothesis: it completed, the
// steady state held before and after and no activity failed.
func (j *Journal) Passed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.Weft != nil && j.Status == StatusCompleted && !j.Deviated &&
		j.Weft.Before != "not met" && j.Weft.After != "not met" && strings.HasPrefix(j.Weft.Method, "ok")
}

// verdict writes the one line nobody can misread.
func verdictLine(title string, w *WeftReport, status string, deviated bool) string {
	word := "PASSED"
	if !(status == StatusCompleted && !deviated && w.Before != "not met" && w.After != "not met" && strings.HasPrefix(w.Method, "ok")) {
		word = "FAILED"
	}
	return fmt.Sprintf("VERDICT: %s — %q: steady state before: %s; method: %s; steady state after: %s (journal status %s, deviated %t)",
		word, title, w.Before, w.Method, w.After, status, deviated)
}
