package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/store"
	"github.com/weft-dev/weft/internal/vip"
)

// decisionTick is how often a candidate re-evaluates; cheap, local.
const decisionTick = 20 * time.Millisecond

// run is the candidate loop of one VIP: watch the key, probe its holder,
// decide (vip.Decide), and while holding renew every vip.RenewInterval.
func (v *vipHost) run(ctx context.Context, r *vipRun) {
	log := v.log.With("vip", r.spec.Name)
	w := v.election.WatchVIP(ctx, r.spec.Name)
	prober := &vip.Prober{VIP: r.spec.Name, Interval: vip.ProbeInterval}
	for ctx.Err() == nil {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP(v.selfAddr.AsSlice())})
		if err == nil {
			go prober.Run(ctx, conn)
			break
		}
		log.Warn("opening the VIP probe socket", "err", err)
		sleepCtx(ctx, time.Second)
	}
	tick := time.NewTicker(decisionTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			v.resign(r, "agent stopping", log)
			return
		case <-tick.C:
		case <-w.Changes():
		}
		state, loaded := w.Latest()
		if !loaded {
			continue
		}
		healthy := v.healthyHere(r)
		holding, due := r.holding()
		if holding {
			prober.SetTarget(netip.AddrPort{})
		} else if rec := state.Record; rec != nil && rec.Holder != "" && rec.Holder != v.self && rec.HolderAddr.IsValid() {
			prober.SetTarget(netip.AddrPortFrom(rec.HolderAddr, vip.ProbePort))
		} else {
			prober.SetTarget(netip.AddrPort{})
		}
		_, misses, lastOK := prober.State()
		action, cause := vip.Decide(vip.View{
			Self: v.self, Healthy: healthy, Holding: holding,
			Record: state.Record, Seen: state.Seen, Misses: misses, Now: time.Now(),
		})
		switch {
		case action == vip.Resign:
			v.resign(r, cause, log)
		case action == vip.Claim:
			lastAlive := state.Seen
			if lastOK.After(lastAlive) {
				lastAlive = lastOK
			}
			if lost := v.claim(ctx, r, state, cause, lastAlive, log); lost != nil {
				// The watch is behind the key: go on from what the claim
				// found (a newer revision starts the fence again).
				w.Observe(lost.Current)
			}
		case due:
			v.renew(ctx, r, log)
		}
	}
}

// claim takes the VIP through the store; on success it announces the VIP,
// then delivers it. A claim lost to a newer revision returns it.
func (v *vipHost) claim(ctx context.Context, r *vipRun, state store.VIPState, cause string, lastAlive time.Time, log *slog.Logger) *store.ClaimLostError {
	now := time.Now()
	rec := model.VIPRecord{Holder: v.self, HolderAddr: v.selfAddr, Epoch: 1, Since: now.UTC()}
	var failover *model.VIPFailover
	if prev := state.Record; prev != nil {
		rec.Epoch = prev.Epoch + 1
		rec.LastFailover = prev.LastFailover
		if prev.Holder != v.self {
			failover = &model.VIPFailover{At: now.UTC(), From: prev.Holder, To: v.self, Cause: cause}
			rec.LastFailover = failover
		}
	}
	cctx, cancel := context.WithTimeout(ctx, vip.Fence)
	term, err := v.election.ClaimVIP(cctx, r.spec.Name, state.Rev, rec)
	cancel()
	claimTook := time.Since(now)
	if err != nil {
		var lost *store.ClaimLostError
		if errors.As(err, &lost) {
			return lost
		}
		if !errors.Is(err, store.ErrVIPClaimLost) {
			log.Warn("claiming the VIP", "err", err)
		}
		return nil
	}
	r.mu.Lock()
	r.term, r.okSent, r.announced, r.lapsed = term, now, false, false
	r.mu.Unlock()
	v.announce(ctx, r, log)
	if err := v.delivery.Live(r.spec.Address, vip.Fence-time.Since(now)); err != nil {
		log.Warn("delivering the VIP", "err", err)
	}
	log.Info("VIP claimed", "epoch", rec.Epoch, "cause", cause, "record_silent", now.Sub(state.Seen).Round(time.Millisecond),
		"last_alive", now.Sub(lastAlive).Round(time.Millisecond), "claim_took", claimTook.Round(time.Millisecond),
		"delivering_after", time.Since(now).Round(time.Millisecond))
	if failover != nil && !lastAlive.IsZero() {
		measured := *failover // the claimed record keeps its own copy
		measured.Duration = time.Since(lastAlive)
		rec.LastFailover = &measured
		// The next renewal writes the record with the measured duration.
		r.mu.Lock()
		r.pending = &rec
		r.mu.Unlock()
	}
	return nil
}

func (v *vipHost) announce(ctx context.Context, r *vipRun, log *slog.Logger) {
	actx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := v.announcer.Announce(actx, r.spec.Address, v.selfAddr); err != nil {
		log.Warn("announcing the VIP", "err", err)
		return
	}
	r.mu.Lock()
	r.announced = true
	r.mu.Unlock()
}

// renew extends the term. A lost term stops delivering at once. A renewal
// not acknowledged within vip.Fence lets the kernel stop delivering, but
// keeps the term: the next acknowledged renewal delivers again, and only
// after vip.Grace without one is the term given up.
func (v *vipHost) renew(ctx context.Context, r *vipRun, log *slog.Logger) {
	r.mu.Lock()
	term, okSent, pending := r.term, r.okSent, r.pending
	r.mu.Unlock()
	sent := time.Now()
	// One attempt lasts at most a fence: a renewal slower than that cannot
	// make delivery live again anyway. An attempt stuck on a slow member is
	// given up and made again (a lost answer is adopted then), instead of
	// holding the loop for the whole grace.
	rctx, cancel := context.WithTimeout(ctx, vip.Fence)
	var err error
	if pending != nil {
		err = term.Update(rctx, *pending)
	} else {
		err = term.Renew(rctx)
	}
	cancel()
	left := vip.Fence - time.Since(sent)
	switch {
	case err == nil && left <= 0:
		// Acknowledged too late to prove anything: the term stays, but the
		// grace's clock goes on; the next attempt is due at once.
		r.mu.Lock()
		r.pending = nil
		r.mu.Unlock()
	case err == nil:
		r.mu.Lock()
		r.okSent, r.pending = sent, nil
		announced, lapsed := r.announced, r.lapsed
		r.lapsed = false
		r.mu.Unlock()
		if lapsed {
			log.Info("VIP renewed again after a pause; delivering", "paused_for", sent.Sub(okSent).Round(time.Millisecond))
		}
		if !announced {
			v.announce(ctx, r, log)
		}
		if err := v.delivery.Live(r.spec.Address, vip.Fence-time.Since(sent)); err != nil {
			log.Warn("refreshing the VIP's delivery", "err", err)
		}
	case errors.Is(err, store.ErrVIPLost):
		log.Warn("VIP taken over by another host; fencing")
		v.drop(r, log)
	case time.Since(okSent) >= vip.Grace:
		log.Warn("VIP not renewed within the grace period; giving the term up", "grace", vip.Grace, "err", err)
		v.drop(r, log)
	case time.Since(okSent) >= vip.Fence:
		r.mu.Lock()
		first := !r.lapsed
		r.lapsed = true
		r.mu.Unlock()
		if first {
			log.Warn("VIP not renewed in time; not delivering until a renewal comes back", "err", err)
			if err := v.delivery.Fence(r.spec.Address); err != nil {
				log.Warn("fencing the VIP", "err", err)
			}
		}
	}
}

// drop fences the VIP and forgets the term without writing to the store.
func (v *vipHost) drop(r *vipRun, log *slog.Logger) {
	if err := v.delivery.Fence(r.spec.Address); err != nil {
		log.Warn("fencing the VIP", "err", err)
	}
	r.mu.Lock()
	term := r.term
	r.term, r.pending, r.lapsed = nil, nil, false
	r.mu.Unlock()
	if term != nil {
		term.Abandon()
	}
}

// resign gives the VIP up: stop delivering, release the key so a candidate
// takes over at once, withdraw the route if it is still ours.
func (v *vipHost) resign(r *vipRun, cause string, log *slog.Logger) {
	r.mu.Lock()
	term := r.term
	r.mu.Unlock()
	if term == nil {
		return
	}
	log.Info("resigning the VIP", "cause", cause)
	v.drop(r, log)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := term.Release(ctx); err != nil {
		log.Warn("releasing the VIP", "err", err)
	}
	if err := v.announcer.Withdraw(ctx, r.spec.Address, v.selfAddr); err != nil {
		log.Warn("withdrawing the VIP's route", "err", err)
	}
}

// healthyHere says whether this host runs a healthy instance of one of the
// VIP's services: the condition of candidacy (and of staying holder).
func (v *vipHost) healthyHere(r *vipRun) bool {
	_, present, healthy := v.local(r.spec)
	return healthy && present
}

// holding says whether this host holds its term, and whether that term is
// due for renewal.
func (r *vipRun) holding() (holding, due bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	holding = r.term != nil
	return holding, holding && time.Since(r.okSent) >= vip.RenewInterval
}
