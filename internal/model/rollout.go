package model

import (
	"time"

	"github.com/weft-dev/weft/internal/spec"
)

// Rollout states.
const (
	RolloutRolling     = "rolling"      // replacing instances with the file's definition
	RolloutRollingBack = "rolling-back" // the new definition failed: going back to the previous one
	RolloutPaused      = "paused"       // failure_action pause: nothing more changes until the file does
	RolloutCompleted   = "completed"    // every instance runs the file's definition
	RolloutRolledBack  = "rolled-back"  // every instance runs the previous definition again
)

// Rollout is a service's last change of definition, kept in the store by
// the leader. It holds every definition an instance still runs, so that
// the previous one can be rolled back to, by any leader, after a crash.
type Rollout struct {
	Service string `json:"service"`
	From    string `json:"from,omitempty"` // definition (hash) before the change
	To      string `json:"to"`             // definition the file asks for
	State   string `json:"state"`
	// Defs are the definitions by hash: To, From and any an instance runs.
	Defs    map[string]spec.Service `json:"defs"`
	Started time.Time               `json:"started"`
	Ended   time.Time               `json:"ended,omitzero"`
	// BatchAt is when the batch in flight began; NextAt the earliest start
	// of the next batch (update.delay after the last one ended).
	BatchAt time.Time `json:"batch_at,omitzero"`
	NextAt  time.Time `json:"next_at,omitzero"`
	Failed  []string  `json:"failed,omitempty"`  // instances of To that failed
	Message string    `json:"message,omitempty"` // why it rolled back or paused
}

// Target is the definition instances are being moved to.
func (r Rollout) Target() string {
	if r.State == RolloutRollingBack || r.State == RolloutRolledBack {
		return r.From
	}
	return r.To
}

// Settled says whether the rollout has stopped moving instances.
func (r Rollout) Settled() bool {
	return r.State == RolloutCompleted || r.State == RolloutRolledBack || r.State == RolloutPaused
}

// Scale is the last change of a service's replicas, and who made it.
type Scale struct {
	Service string    `json:"service"`
	From    int       `json:"from"`
	To      int       `json:"to"`
	By      string    `json:"by"` // "weft scale" or "file"
	At      time.Time `json:"at"`
}

// Who changed a service's replicas.
const (
	ScaledByCommand = "weft scale"
	ScaledByFile    = "file"
)
