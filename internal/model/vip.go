package model

import (
	"net/netip"
	"time"
)

// VIPRecord is who holds a VIP, as the store says. Epoch is the fencing
// token: it grows by one with every claim, so a holder's writes carry the
// term they belong to.
type VIPRecord struct {
	Holder       string       `json:"holder"` // host name; "" after the holder resigned
	HolderAddr   netip.Addr   `json:"holder_addr,omitzero"`
	Epoch        int64        `json:"epoch"`
	Since        time.Time    `json:"since"`
	LastFailover *VIPFailover `json:"last_failover,omitempty"`
}

// VIPFailover is one move of a VIP to a new holder.
type VIPFailover struct {
	At    time.Time `json:"at"`   // when the new holder won the claim
	From  string    `json:"from"` // the previous holder, "" when there was none
	To    string    `json:"to"`
	Cause string    `json:"cause"`
	// Duration runs from the last sign of life of the previous holder (its
	// last answered probe or renewal seen) to the new holder delivering; 0
	// for a first claim.
	Duration time.Duration `json:"duration_ns"`
}
