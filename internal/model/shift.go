package model

import "time"

// States of a traffic shift.
const (
	ShiftPending    = "pending"     // requested by weft shift; the leader has not started it
	ShiftRunning    = "running"     // moving the weight step by step, analysing each interval
	ShiftPromoted   = "promoted"    // the new backend takes all the traffic
	ShiftRolledBack = "rolled-back" // the route is back on the weights it had before
)

// ShiftDone says whether the shift has ended.
func ShiftDone(state string) bool { return state == ShiftPromoted || state == ShiftRolledBack }

// Weight is one backend's share of a route.
type Weight struct {
	Service string `json:"service"`
	Weight  int    `json:"weight"`
}

// RouteWeights is the live weights of a route that differ from the cluster
// file's: while a record exists the gateways use its weights, not the
// file's. It is the one source of a route's live weights (store key
// weights/<route>); the file's weights apply again when it is removed.
type RouteWeights struct {
	Route    string    `json:"route"`
	Backends []Weight  `json:"backends"`
	File     []Weight  `json:"file"` // the file's weights when this was written: a file that changes them wins
	By       string    `json:"by"`   // e.g. "weft shift <id>"
	At       time.Time `json:"at"`
}

// ShiftSettings are what `weft shift` was asked to do.
type ShiftSettings struct {
	Route        string        `json:"route"`
	To           string        `json:"to"`
	Steps        []int         `json:"steps"`          // weights of To, in percent, ending at 100
	Interval     time.Duration `json:"interval"`       // how long each analysis lasts
	MaxErrorRate float64       `json:"max_error_rate"` // fraction, 0.01 is 1 %
	MaxP99       time.Duration `json:"max_p99"`
	Threshold    int           `json:"threshold"` // failed intervals that roll back
}

// Shift is one traffic shift and its history (store key shift/<route>).
// The leader agent drives it; every decision is written here before it
// takes effect, so a new leader resumes from this record.
type Shift struct {
	ID string `json:"id"`
	ShiftSettings
	From        []Weight   `json:"from"` // the route's weights before the shift, restored by a rollback
	FromFile    bool       `json:"from_file"`
	State       string     `json:"state"`
	Step        int        `json:"step"` // index into Steps
	Failed      int        `json:"failed"`
	Requested   time.Time  `json:"requested"`
	Started     time.Time  `json:"started,omitzero"`
	Ended       time.Time  `json:"ended,omitzero"`
	Current     *Interval  `json:"current,omitempty"` // the interval being measured
	Intervals   []Interval `json:"intervals,omitempty"`
	Events      []Event    `json:"events,omitempty"`
	Message     string     `json:"message,omitempty"` // why it ended
	Leader      string     `json:"leader,omitempty"`  // host of the agent driving it
	LastUpdated time.Time  `json:"last_updated,omitzero"`
}

// Event is a line of a shift's history that is no interval: a step taken,
// a leader change, the end.
type Event struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// Interval is one analysis of the new backend over a time window.
type Interval struct {
	Step     int                 `json:"step"`
	Weights  []Weight            `json:"weights"`
	Start    time.Time           `json:"start"`
	End      time.Time           `json:"end,omitzero"`
	Baseline map[string]GwSample `json:"baseline,omitempty"` // per gateway container, at Start
	Gateways []Figures           `json:"gateways,omitempty"`
	Total    Figures             `json:"total"`
	Pass     bool                `json:"pass"`
	Reason   string              `json:"reason,omitempty"`
}

// Figures are one gateway's (or all gateways') measure of the new backend
// over an interval.
type Figures struct {
	Gateway   string        `json:"gateway,omitempty"`
	Requests  int64         `json:"requests"`
	Errors    int64         `json:"errors"`
	ErrorRate float64       `json:"error_rate"`
	P99       time.Duration `json:"p99"`
	Note      string        `json:"note,omitempty"` // e.g. "restarted": counted from its restart
}

// GwSample is one gateway's cumulative counters of one route backend, read
// from its own metrics (weft_gateway_backend_requests_total and
// weft_gateway_backend_request_duration_seconds).
type GwSample struct {
	Gateway string    `json:"gateway"` // container
	Host    string    `json:"host"`
	Started time.Time `json:"started"` // the gateway process's start: counters restart with it
	At      time.Time `json:"at"`
	Route   string    `json:"route"`
	Service string    `json:"service"`
	// Codes counts answers by status code. Buckets[i] counts the requests
	// that took at most Bounds[i] seconds; one more, last, counts them all.
	Codes   map[int]int64 `json:"codes"`
	Bounds  []float64     `json:"bounds"`
	Buckets []int64       `json:"buckets"`
}
