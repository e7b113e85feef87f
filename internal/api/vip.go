package api

import "time"

// VIPStatus is one VIP of the applied file and who holds it.
type VIPStatus struct {
	Name         string       `json:"name"`
	Address      string       `json:"address"`
	Port         int          `json:"port"`
	Mode         string       `json:"mode"`
	Holder       string       `json:"holder"`            // host name; "" when nobody holds it (and in active-active)
	Holders      []string     `json:"holders,omitempty"` // active-active: every member host with a live key
	Epoch        int64        `json:"epoch"`             // fencing token of the holder's term
	Since        *time.Time   `json:"since,omitempty"`
	LastFailover *VIPFailover `json:"last_failover,omitempty"`
}

// VIPFailover is the last move of a VIP to a new holder.
type VIPFailover struct {
	At         time.Time `json:"at"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Cause      string    `json:"cause"`
	DurationMS float64   `json:"duration_ms"` // from the old holder's last sign of life to the new holder delivering
}
