package vip

import (
	"net/netip"
	"slices"
	"time"
)

// Member is one host's membership of an active-active VIP, as one host
// sees it.
type Member struct {
	Addr     netip.Addr
	Seen     time.Time // when its key's current revision was first seen
	Released bool      // its key says it left
	Self     bool
	Fresh    bool // Self only: its own term was renewed within Fence
}

// Routed lists, sorted, the members an active-active VIP's multipath route
// should lead to at now: this host while its term is fresh, and every
// other member whose key changed within Fence+Margin. A member that stops
// renewing (crashed, cut off) has stopped delivering by the time it is
// dropped, by the same rule as a standby holder.
func Routed(members []Member, now time.Time) []netip.Addr {
	var out []netip.Addr
	for _, m := range members {
		switch {
		case !m.Addr.IsValid() || m.Released:
		case m.Self && m.Fresh:
			out = append(out, m.Addr)
		case !m.Self && now.Sub(m.Seen) < Fence+Margin:
			out = append(out, m.Addr)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
