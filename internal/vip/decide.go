package vip

import (
	"fmt"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// Timing of the election. Detection is by direct probes (like VRRPv3 at 0.1
// s adverts); the takeover goes through the store; Fence is the fencing
// rule's clock (see Decide).
const (
	ProbeInterval = 100 * time.Millisecond
	MissLimit     = 3
	RenewInterval = 100 * time.Millisecond
	// Fence is how long a holder delivers after sending a renewal the store
	// acknowledged: its kernel drops the VIP by itself at that moment.
	Fence = 400 * time.Millisecond
	// Margin covers the time between a renewal reaching etcd and a
	// candidate's watch seeing it; it only makes the rule stricter.
	Margin = 50 * time.Millisecond
	// Grace is how long a holder that cannot renew keeps its term. Past
	// the fence it delivers nothing, but it goes on renewing and tells
	// probers it is alive, so a store that answers slowly (a busy machine)
	// only pauses new connections for a moment instead of moving the VIP
	// and resetting every connection. A renewal that succeeds within Grace
	// makes it deliver again; after Grace it gives the term up. Grace is
	// shorter than the term's lease (3 s).
	Grace = 2 * time.Second
)

// Action is what a host does about one VIP at one instant.
type Action int

const (
	Nothing Action = iota
	Claim          // take the VIP through the store
	Resign         // give it up (holder only)
)

func (a Action) String() string {
	return [...]string{"nothing", "claim", "resign"}[a]
}

// View is what a host knows about one VIP at one instant.
type View struct {
	Self    string
	Healthy bool // a local instance of one of the VIP's services is healthy
	Holding bool // this host has a live term

	Record *model.VIPRecord // the store's record, nil when absent
	Seen   time.Time        // when this host first saw the record's revision
	Misses int              // consecutive missed probes of Record.Holder
	Now    time.Time
}

// Decide is the election rule:
//
//   - candidacy lasts only while a local instance is healthy; a holder whose
//     instance turns unhealthy resigns;
//   - a VIP without holder (no key, or released) is claimed at once;
//   - a holder that missed MissLimit probes is taken over only when its
//     record has not changed for Fence+Margin: its last acknowledged
//     renewal was sent before this host saw it, so its kernel has stopped
//     delivering by then. That is the fencing rule: at most one host
//     delivers at every instant, also when the holder is cut off but alive
//     (it cannot renew, so it fences itself at the same moment).
//
// The claim itself compares the key's revision, so of two candidates only
// one wins, and a renewal racing a claim makes the claim fail.
func Decide(v View) (Action, string) {
	switch {
	case v.Holding && !v.Healthy:
		return Resign, "local instance unhealthy"
	case v.Holding || !v.Healthy:
		return Nothing, ""
	case v.Record == nil:
		return Claim, "no holder"
	case v.Record.Holder == "":
		return Claim, "holder resigned"
	case v.Record.Holder == v.Self:
		return Claim, "holder restarted"
	case v.Misses >= MissLimit && v.Now.Sub(v.Seen) >= Fence+Margin:
		return Claim, fmt.Sprintf("holder %s missed %d probes", v.Record.Holder, v.Misses)
	}
	return Nothing, ""
}
