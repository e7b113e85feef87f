package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
	"github.com/weft-dev/weft/internal/vip"
)

// VIPTable is the nftables table the agent delivers VIPs with, in its host
// namespace (it goes with the namespace on `weft down`).
const VIPTable = "weft_vip"

// vipSpecPoll is how often the VIP loop reads the applied file and the
// local instances for changes of VIPs and delivery targets.
const vipSpecPoll = time.Second

// vipLoop runs the election of every VIP of the applied file on this host:
// a probe server answering for the VIPs held here, the delivery rules of
// the local instances, and one candidate loop per VIP (runVIP).
func (a *Agent) vipLoop(ctx context.Context, st *store.Store) error {
	vs, err := store.ConnectVIP(ctx, store.ClientURLs(a.boot), a.cfg.Cluster)
	if err != nil {
		return fmt.Errorf("connecting the VIP election: %w", err)
	}
	defer vs.Close()
	v := &vipHost{
		a:         a,
		st:        vs,
		announcer: lab.RouteAnnouncer{Cluster: a.cfg.Cluster},
		delivery:  vip.Delivery{Table: VIPTable},
		runs:      map[string]*vipRun{},
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { v.serveProbes(ctx) })
	var rules []vip.Rule
	rulesSet := false
	for {
		c, err := st.Spec(ctxTimeout(ctx, 2*time.Second))
		if err == nil && c != nil {
			v.sync(ctx, &wg, c)
			want := v.rules(c)
			if !rulesSet || !slices.Equal(want, rules) {
				if err := v.delivery.Set(want); err != nil {
					a.log.Warn("setting VIP delivery rules", "err", err)
				} else {
					// Replacing the table drops live elements: holders
					// make their VIP live again at their next renewal.
					rules, rulesSet = want, true
				}
			}
		}
		select {
		case <-ctx.Done():
			v.stopAll()
			return nil
		case <-time.After(vipSpecPoll):
		}
	}
}

func ctxTimeout(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(c, cancel)
	return c
}

type vipHost struct {
	a         *Agent
	st        *store.VIPStore
	announcer vip.Announcer
	delivery  vip.Delivery

	mu   sync.Mutex
	runs map[string]*vipRun
}

// vipRun is this host's candidacy (and term) for one VIP.
type vipRun struct {
	spec   spec.VIP
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	term      *store.VIPTerm
	okSent    time.Time // send time of the last claim or renewal the store acknowledged
	announced bool
	pending   *model.VIPRecord // record to write at the next renewal
}

// held reports the term's epoch while the term delivers.
func (r *vipRun) held() (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.term == nil || time.Since(r.okSent) >= vip.Fence {
		return 0, false
	}
	return r.term.Record().Epoch, true
}

func (v *vipHost) serveProbes(ctx context.Context) {
	addr := netip.AddrPortFrom(v.a.self.Address, vip.ProbePort).String()
	for ctx.Err() == nil {
		var lc net.ListenConfig
		pc, err := lc.ListenPacket(ctx, "udp4", addr)
		if err != nil {
			v.a.log.Warn("listening for VIP probes", "addr", addr, "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		err = vip.ServeProbes(ctx, pc, func(name string) (int64, bool) {
			v.mu.Lock()
			r := v.runs[name]
			v.mu.Unlock()
			if r == nil {
				return 0, false
			}
			return r.held()
		})
		if err != nil {
			v.a.log.Warn("serving VIP probes", "err", err)
			sleepCtx(ctx, time.Second)
		}
	}
}

// sync starts a run for every VIP of c and stops the others.
func (v *vipHost) sync(ctx context.Context, wg *sync.WaitGroup, c *spec.Cluster) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for name, r := range v.runs {
		if s, ok := c.VIPByName(name); !ok || !sameVIP(s, r.spec) {
			r.cancel()
			<-r.done
			delete(v.runs, name)
		}
	}
	for _, s := range c.VIPs {
		if _, ok := v.runs[s.Name]; ok {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &vipRun{spec: s, cancel: cancel, done: make(chan struct{})}
		v.runs[s.Name] = r
		wg.Go(func() {
			defer close(r.done)
			v.run(rctx, r)
		})
	}
}

func sameVIP(x, y spec.VIP) bool {
	return x.Name == y.Name && x.Address == y.Address && x.Port == y.Port && x.TargetPort == y.TargetPort &&
		x.Mode == y.Mode && slices.Equal(x.Services, y.Services)
}

func (v *vipHost) stopAll() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for name, r := range v.runs {
		r.cancel()
		<-r.done
		delete(v.runs, name)
	}
}

// local is this host's instance a VIP is delivered to: the first (by
// name) local container of one of its services, and whether it is healthy.
func (v *vipHost) local(s spec.VIP) (netip.AddrPort, bool, bool) {
	a := v.a
	a.mu.Lock()
	var runs []*containerRun
	for _, r := range a.containers {
		if slices.Contains(s.Services, r.assign.Service) {
			runs = append(runs, r)
		}
	}
	a.mu.Unlock()
	if len(runs) == 0 {
		return netip.AddrPort{}, false, false
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].assign.Container < runs[j].assign.Container })
	r := runs[0]
	return netip.AddrPortFrom(r.assign.IP, uint16(s.TargetPort)), true, r.snapshot().Ready()
}

// rules are the delivery rules of every VIP with a local instance.
func (v *vipHost) rules(c *spec.Cluster) []vip.Rule {
	var out []vip.Rule
	for _, s := range c.VIPs {
		if target, ok, _ := v.local(s); ok {
			out = append(out, vip.Rule{VIP: s.Address, Port: uint16(s.Port), Target: target})
		}
	}
	return out
}

// decisionTick is how often a candidate re-evaluates; cheap, local.
const decisionTick = 20 * time.Millisecond

// run is the candidate loop of one VIP: watch the key, probe its holder,
// decide (vip.Decide), and while holding renew every vip.RenewInterval.
func (v *vipHost) run(ctx context.Context, r *vipRun) {
	a := v.a
	log := a.log.With("vip", r.spec.Name)
	w := v.st.WatchVIP(ctx, r.spec.Name)
	prober := &vip.Prober{VIP: r.spec.Name, Interval: vip.ProbeInterval}
	for ctx.Err() == nil {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP(a.self.Address.AsSlice())})
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
		_, present, healthy := v.local(r.spec)
		healthy = healthy && present
		r.mu.Lock()
		holding := r.term != nil
		due := holding && time.Since(r.okSent) >= vip.RenewInterval
		r.mu.Unlock()
		if holding {
			prober.SetTarget(netip.AddrPort{})
		} else if rec := state.Record; rec != nil && rec.Holder != "" && rec.Holder != a.self.Name && rec.HolderAddr.IsValid() {
			prober.SetTarget(netip.AddrPortFrom(rec.HolderAddr, vip.ProbePort))
		} else {
			prober.SetTarget(netip.AddrPort{})
		}
		_, misses, lastOK := prober.State()
		action, cause := vip.Decide(vip.View{
			Self: a.self.Name, Healthy: healthy, Holding: holding,
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
			v.claim(ctx, r, state, cause, lastAlive, log)
		case due:
			v.renew(ctx, r, log)
		}
	}
}

// claim takes the VIP through the store; on success it announces the VIP,
// then delivers it.
func (v *vipHost) claim(ctx context.Context, r *vipRun, state store.VIPState, cause string, lastAlive time.Time, log *slog.Logger) {
	a := v.a
	now := time.Now()
	rec := model.VIPRecord{Holder: a.self.Name, HolderAddr: a.self.Address, Epoch: 1, Since: now.UTC()}
	var failover *model.VIPFailover
	if prev := state.Record; prev != nil {
		rec.Epoch = prev.Epoch + 1
		rec.LastFailover = prev.LastFailover
		if prev.Holder != a.self.Name {
			failover = &model.VIPFailover{At: now.UTC(), From: prev.Holder, To: a.self.Name, Cause: cause}
			rec.LastFailover = failover
		}
	}
	cctx, cancel := context.WithTimeout(ctx, vip.Fence)
	term, err := v.st.ClaimVIP(cctx, r.spec.Name, state.Rev, rec)
	cancel()
	claimTook := time.Since(now)
	if err != nil {
		if !errors.Is(err, store.ErrVIPClaimLost) {
			log.Warn("claiming the VIP", "err", err)
		}
		return
	}
	r.mu.Lock()
	r.term, r.okSent, r.announced = term, now, false
	r.mu.Unlock()
	v.announce(ctx, r, log)
	if err := v.delivery.Live(r.spec.Address, vip.Fence-time.Since(now)); err != nil {
		log.Warn("delivering the VIP", "err", err)
	}
	log.Info("VIP claimed", "epoch", rec.Epoch, "cause", cause, "record_silent", now.Sub(state.Seen).Round(time.Millisecond),
		"last_alive", now.Sub(lastAlive).Round(time.Millisecond), "claim_took", claimTook.Round(time.Millisecond),
		"delivering_after", time.Since(now).Round(time.Millisecond))
	if failover != nil && !lastAlive.IsZero() {
		failover.Duration = time.Since(lastAlive)
		rec.LastFailover = failover
		// The next renewal writes the record with the measured duration.
		r.mu.Lock()
		r.pending = &rec
		r.mu.Unlock()
	}
}

func (v *vipHost) announce(ctx context.Context, r *vipRun, log *slog.Logger) {
	actx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := v.announcer.Announce(actx, r.spec.Address, v.a.self.Address); err != nil {
		log.Warn("announcing the VIP", "err", err)
		return
	}
	r.mu.Lock()
	r.announced = true
	r.mu.Unlock()
}

// renew extends the term; a lost term, or one not renewed within
// vip.Fence, stops delivering at once.
func (v *vipHost) renew(ctx context.Context, r *vipRun, log *slog.Logger) {
	r.mu.Lock()
	term, okSent, pending := r.term, r.okSent, r.pending
	r.mu.Unlock()
	sent := time.Now()
	rctx, cancel := context.WithTimeout(ctx, max(vip.Fence-time.Since(okSent), 50*time.Millisecond))
	var err error
	if pending != nil {
		err = term.Update(rctx, *pending)
	} else {
		err = term.Renew(rctx)
	}
	cancel()
	switch {
	case err == nil:
		r.mu.Lock()
		r.okSent, r.pending = sent, nil
		announced := r.announced
		r.mu.Unlock()
		if !announced {
			v.announce(ctx, r, log)
		}
		if err := v.delivery.Live(r.spec.Address, vip.Fence-time.Since(sent)); err != nil {
			log.Warn("refreshing the VIP's delivery", "err", err)
		}
	case errors.Is(err, store.ErrVIPLost):
		log.Warn("VIP taken over by another host; fencing")
		v.drop(r, log)
	case time.Since(okSent) >= vip.Fence:
		log.Warn("VIP not renewed in time; fencing", "err", err)
		v.drop(r, log)
	}
}

// drop fences the VIP and forgets the term without writing to the store.
func (v *vipHost) drop(r *vipRun, log *slog.Logger) {
	if err := v.delivery.Fence(r.spec.Address); err != nil {
		log.Warn("fencing the VIP", "err", err)
	}
	r.mu.Lock()
	term := r.term
	r.term, r.pending = nil, nil
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
	if err := v.announcer.Withdraw(ctx, r.spec.Address, v.a.self.Address); err != nil {
		log.Warn("withdrawing the VIP's route", "err", err)
	}
}
