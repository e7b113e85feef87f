package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/store"
	"github.com/weft-dev/weft/internal/vip"
)

// routeReassert is how often an active-active member that is fresh writes
// the route even when its view did not change, so that a write lost to a
// concurrent writer with an older view is repaired.
const routeReassert = time.Second

// runActive is this host's part in an active-active VIP: while its local
// instance is healthy it keeps a member key of its own (claimed, renewed
// and fenced exactly like a standby holder's term, so it delivers only
// while the store acknowledges it), and while its term is fresh it keeps
// the router's multipath route equal to the members that renew
// (vip.Routed). A member that stops renewing is dropped from the route by
// the others after vip.Fence+vip.Margin, when its kernel has already
// stopped delivering.
func (v *vipHost) runActive(ctx context.Context, r *vipRun) {
	log := v.log.With("vip", r.spec.Name, "mode", r.spec.Mode)
	w := v.election.WatchVIPMembers(ctx, r.spec.Name)
	tick := time.NewTicker(decisionTick)
	defer tick.Stop()
	var routed []netip.Addr
	var wrote time.Time
	for {
		select {
		case <-ctx.Done():
			v.leave(r, w, log)
			return
		case <-tick.C:
		case <-w.Changes():
		}
		members, loaded := w.Latest()
		if !loaded {
			continue
		}
		healthy := v.healthyHere(r)
		holding, due := r.holding()
		switch {
		case holding && !healthy:
			v.leave(r, w, log)
			routed = nil
		case !holding && healthy:
			v.join(ctx, r, members[v.self], log)
		case due:
			v.renew(ctx, r, log)
		}
		r.mu.Lock()
		fresh := r.term != nil && time.Since(r.okSent) < vip.Fence
		r.mu.Unlock()
		if !fresh {
			continue
		}
		want := vip.Routed(v.memberViews(members, true), time.Now())
		if slices.Equal(want, routed) && time.Since(wrote) < routeReassert {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, time.Second)
		err := v.announcer.Announce(actx, r.spec.Address, want...)
		cancel()
		if err != nil {
			log.Warn("routing the VIP to its members", "members", want, "err", err)
			continue
		}
		if !slices.Equal(want, routed) {
			log.Info("VIP routed", "members", want)
		}
		routed, wrote = want, time.Now()
	}
}

func (v *vipHost) memberViews(members map[string]store.VIPState, selfFresh bool) []vip.Member {
	var out []vip.Member
	for host, st := range members {
		if st.Record == nil {
			continue
		}
		out = append(out, vip.Member{Addr: st.Record.HolderAddr, Seen: st.Seen, Released: st.Record.Holder == "",
			Self: host == v.self, Fresh: host == v.self && selfFresh})
	}
	return out
}

// join claims this host's member key and delivers.
func (v *vipHost) join(ctx context.Context, r *vipRun, prev store.VIPState, log *slog.Logger) {
	now := time.Now()
	rec := model.VIPRecord{Holder: v.self, HolderAddr: v.selfAddr, Epoch: 1, Since: now.UTC()}
	if prev.Record != nil {
		rec.Epoch = prev.Record.Epoch + 1
	}
	cctx, cancel := context.WithTimeout(ctx, vip.Fence)
	term, err := v.election.ClaimVIP(cctx, store.VIPMemberKey(r.spec.Name, v.self), prev.Rev, rec)
	cancel()
	if err != nil {
		if !errors.Is(err, store.ErrVIPClaimLost) {
			log.Warn("joining the VIP", "err", err)
		}
		return
	}
	r.mu.Lock()
	// The route is the members' business, not a single announce.
	r.term, r.okSent, r.announced = term, now, true
	r.mu.Unlock()
	if err := v.delivery.Live(r.spec.Address, vip.Fence-time.Since(now)); err != nil {
		log.Warn("delivering the VIP", "err", err)
	}
	log.Info("joined the VIP", "epoch", rec.Epoch)
}

// leave stops delivering, releases the member key, and routes the VIP to
// the other members that renew (none: no route).
func (v *vipHost) leave(r *vipRun, w vipMembersWatch, log *slog.Logger) {
	r.mu.Lock()
	term := r.term
	r.mu.Unlock()
	if term == nil {
		return
	}
	log.Info("leaving the VIP")
	v.drop(r, log)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := term.Release(ctx); err != nil {
		log.Warn("releasing the VIP membership", "err", err)
	}
	members, _ := w.Latest()
	others := vip.Routed(v.memberViews(members, false), time.Now())
	if err := v.announcer.Announce(ctx, r.spec.Address, others...); err != nil {
		log.Warn("routing the VIP to the other members", "err", err)
	}
}
