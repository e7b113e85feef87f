package agent

import (
	"context"
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

// vipSpecPoll is how often the VIP loop looks at the applied file, as the
// agent's mirror of the store has it (followed.go), and the local instances
// for changes of VIPs and delivery targets. It reads no store.
const vipSpecPoll = time.Second

// vipLoop runs the election of every VIP of the applied file on this host:
// a probe server answering for the VIPs held here, the delivery rules of
// the local instances, and one candidate loop per VIP (vipHost.run, vip_run.go).
func (a *Agent) vipLoop(ctx context.Context, st *store.Store) error {
	// The election's own connection (and its probes of every member) is
	// made only once the applied file has a VIP.
	for {
		if c := followedSpec(st); c != nil && len(c.VIPs) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(vipSpecPoll):
		}
	}
	var vs *store.VIPStore
	for {
		var err error
		if vs, err = store.ConnectVIP(ctx, store.ClientURLs(a.boot), a.creds, a.cfg.Cluster); err == nil {
			break
		}
		a.log.Warn("connecting the VIP election", "err", err)
		sleepCtx(ctx, time.Second)
		if ctx.Err() != nil {
			return nil
		}
	}
	defer vs.Close()
	delivery := vip.Delivery{Table: VIPTable}
	v := &vipHost{
		self:      a.self.Name,
		selfAddr:  a.self.Address,
		log:       a.log,
		election:  storeElection{vs},
		announcer: lab.RouteAnnouncer{Cluster: a.cfg.Cluster},
		delivery:  delivery,
		local:     a.vipLocal,
		runs:      map[string]*vipRun{},
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { v.serveProbes(ctx) })
	var rules []vip.Rule
	rulesSet := false
	vet := &vetter{cluster: a.cfg.Cluster, keep: true, log: a.log}
	for {
		c := followedSpec(st)
		if c != nil {
			c, _, _ = vet.vet(c, nil, nil) // a refused file: the last valid one
		}
		if c != nil {
			v.sync(ctx, &wg, c)
			want := v.rules(c)
			if !rulesSet || !slices.Equal(want, rules) {
				if err := delivery.Set(want); err != nil {
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

// vipHost is one host's side of every VIP's election. Its outside world
// (store, announcer, delivery, local instance) sits behind small
// interfaces so the election logic is tested with fakes.
type vipHost struct {
	self      string
	selfAddr  netip.Addr
	log       *slog.Logger
	election  vipElection
	announcer vip.Announcer
	delivery  vipDelivery
	// local is the VIP's local instance, whether there is one, and whether
	// it is healthy.
	local func(spec.VIP) (netip.AddrPort, bool, bool)

	mu   sync.Mutex
	runs map[string]*vipRun
}

// vipRun is this host's candidacy (and term) for one VIP.
type vipRun struct {
	spec   spec.VIP
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	term      vipTerm
	okSent    time.Time // send time of the last claim or renewal the store acknowledged
	announced bool
	lapsed    bool             // the fence ran out before a renewal came back
	pending   *model.VIPRecord // record to write at the next renewal
}

// held reports the term's epoch while this host holds it: delivering, or
// within vip.Grace of its last acknowledged renewal and still renewing.
func (r *vipRun) held() (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.term == nil || time.Since(r.okSent) >= vip.Grace {
		return 0, false
	}
	return r.term.Record().Epoch, true
}

func (v *vipHost) serveProbes(ctx context.Context) {
	addr := netip.AddrPortFrom(v.selfAddr, vip.ProbePort).String()
	for ctx.Err() == nil {
		var lc net.ListenConfig
		pc, err := lc.ListenPacket(ctx, "udp4", addr)
		if err != nil {
			v.log.Warn("listening for VIP probes", "addr", addr, "err", err)
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
			v.log.Warn("serving VIP probes", "err", err)
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
			if s.Mode == spec.VIPActiveActive {
				v.runActive(rctx, r)
			} else {
				v.run(rctx, r)
			}
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
func (a *Agent) vipLocal(s spec.VIP) (netip.AddrPort, bool, bool) {
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

// vipElection is the store as the election sees it.
type vipElection interface {
	WatchVIP(ctx context.Context, name string) vipWatch
	WatchVIPMembers(ctx context.Context, name string) vipMembersWatch
	ClaimVIP(ctx context.Context, name string, prevRev int64, rec model.VIPRecord) (vipTerm, error)
}

type vipMembersWatch interface {
	Latest() (map[string]store.VIPState, bool)
	Changes() <-chan struct{}
}

type vipWatch interface {
	Latest() (store.VIPState, bool)
	Changes() <-chan struct{}
	Observe(store.VIPState)
}

// vipTerm is a holder's term (store.VIPTerm).
type vipTerm interface {
	Record() model.VIPRecord
	Renew(ctx context.Context) error
	Update(ctx context.Context, rec model.VIPRecord) error
	Release(ctx context.Context) error
	Abandon()
}

// vipDelivery is the kernel side of holding a VIP (vip.Delivery).
type vipDelivery interface {
	Live(vip netip.Addr, validFor time.Duration) error
	Fence(vip netip.Addr) error
}

// storeElection adapts store.VIPStore to vipElection.
type storeElection struct{ s *store.VIPStore }

func (e storeElection) WatchVIP(ctx context.Context, name string) vipWatch {
	return e.s.WatchVIP(ctx, name)
}

func (e storeElection) WatchVIPMembers(ctx context.Context, name string) vipMembersWatch {
	return e.s.WatchVIPMembers(ctx, name)
}

func (e storeElection) ClaimVIP(ctx context.Context, name string, prevRev int64, rec model.VIPRecord) (vipTerm, error) {
	t, err := e.s.ClaimVIP(ctx, name, prevRev, rec)
	if err != nil {
		return nil, err
	}
	return t, nil
}
