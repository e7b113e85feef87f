package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
	"github.com/weft-dev/weft/internal/vip"
)

// fakeElection is the store's VIP key in memory, with the same compare on
// revisions as the real one.
type fakeElection struct {
	mu       sync.Mutex
	rec      *model.VIPRecord
	rev      int64
	seen     time.Time
	renewErr error
	renewals int
	updates  []model.VIPRecord
	changed  []chan struct{}
	// view, when set, is what the watches show instead of the key: a
	// watch that fell behind (its stream sat on a frozen member).
	view *store.VIPState
}

func (e *fakeElection) state() store.VIPState {
	st := store.VIPState{Rev: e.rev, Seen: e.seen}
	if e.rec != nil {
		rec := *e.rec
		st.Record = &rec
	}
	return st
}

func (e *fakeElection) set(rec *model.VIPRecord) {
	e.rev++
	e.rec, e.seen = rec, time.Now()
	for _, c := range e.changed {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// other makes another host hold the VIP (and renew once).
func (e *fakeElection) other(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	epoch := int64(1)
	if e.rec != nil {
		epoch = e.rec.Epoch + 1
	}
	e.set(&model.VIPRecord{Holder: name, HolderAddr: netip.MustParseAddr("127.0.0.2"), Epoch: epoch})
}

// failRenewals makes every renewal fail with err from now on (nil: succeed).
func (e *fakeElection) failRenewals(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.renewErr = err
}

func (e *fakeElection) record() (*model.VIPRecord, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rec, e.renewals
}

type fakeWatch struct {
	e *fakeElection
	c chan struct{}
}

func (w fakeWatch) Latest() (store.VIPState, bool) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	if w.e.view != nil {
		return *w.e.view, true
	}
	return w.e.state(), true
}
func (w fakeWatch) Changes() <-chan struct{} { return w.c }
func (w fakeWatch) Observe(st store.VIPState) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	if w.e.view != nil && st.Rev > w.e.view.Rev {
		w.e.view = &st
	}
}

func (e *fakeElection) WatchVIP(context.Context, string) vipWatch {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := make(chan struct{}, 1)
	e.changed = append(e.changed, c)
	return fakeWatch{e, c}
}

func (e *fakeElection) WatchVIPMembers(context.Context, string) vipMembersWatch {
	panic("active-active is not driven by these fakes")
}

func (e *fakeElection) ClaimVIP(_ context.Context, _ string, prevRev int64, rec model.VIPRecord) (vipTerm, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if prevRev != e.rev {
		return nil, &store.ClaimLostError{Current: e.state()}
	}
	e.set(&rec)
	return &fakeTerm{e: e, rev: e.rev, rec: rec}, nil
}

type fakeTerm struct {
	e   *fakeElection
	rev int64
	rec model.VIPRecord
}

func (t *fakeTerm) Record() model.VIPRecord { return t.rec }
func (t *fakeTerm) Renew(ctx context.Context) error {
	return t.Update(ctx, t.rec)
}
func (t *fakeTerm) Update(_ context.Context, rec model.VIPRecord) error {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	if t.e.renewErr != nil {
		return t.e.renewErr
	}
	if t.e.rev != t.rev {
		return store.ErrVIPLost
	}
	t.e.renewals++
	if rec.LastFailover != t.rec.LastFailover {
		t.e.updates = append(t.e.updates, rec)
	}
	t.e.set(&rec)
	t.rev, t.rec = t.e.rev, rec
	return nil
}
func (t *fakeTerm) Release(context.Context) error {
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	if t.e.rev == t.rev {
		rec := t.rec
		rec.Holder, rec.HolderAddr = "", netip.Addr{}
		t.e.set(&rec)
	}
	return nil
}
func (t *fakeTerm) Abandon() {}

// fakeWorld records what the election does outside the store, in order,
// and emulates the kernel's timed delivery.
type fakeWorld struct {
	mu        sync.Mutex
	events    []string
	liveUntil time.Time
}

func (w *fakeWorld) add(ev string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, ev)
}
func (w *fakeWorld) Announce(_ context.Context, v netip.Addr, holders ...netip.Addr) error {
	w.add(fmt.Sprintf("announce %s via %v", v, strings.Trim(fmt.Sprint(holders), "[]")))
	return nil
}
func (w *fakeWorld) Withdraw(_ context.Context, v, holder netip.Addr) error {
	w.add(fmt.Sprintf("withdraw %s via %s", v, holder))
	return nil
}
func (w *fakeWorld) Live(v netip.Addr, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.events) == 0 || w.events[len(w.events)-1] != "live" {
		w.events = append(w.events, "live")
	}
	w.liveUntil = time.Now().Add(d)
	return nil
}
func (w *fakeWorld) Fence(netip.Addr) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, "fence")
	w.liveUntil = time.Time{}
	return nil
}
func (w *fakeWorld) live() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Now().Before(w.liveUntil)
}
func (w *fakeWorld) log() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.events...)
}

var testVIP = spec.VIP{Name: "front", Address: netip.MustParseAddr("192.168.0.100"), Port: 80, TargetPort: 8080,
	Services: []string{"gw"}, Mode: spec.VIPActiveStandby}

type vipFixture struct {
	e       *fakeElection
	w       *fakeWorld
	healthy atomic.Bool
	r       *vipRun
	cancel  context.CancelFunc
	done    chan struct{}
}

func startVIP(t *testing.T, e *fakeElection, healthy bool) *vipFixture {
	t.Helper()
	f := &vipFixture{e: e, w: &fakeWorld{}, done: make(chan struct{})}
	f.healthy.Store(healthy)
	h := &vipHost{
		self: "me", selfAddr: netip.MustParseAddr("127.0.0.1"), log: slog.New(slog.DiscardHandler),
		election: e, announcer: f.w, delivery: f.w,
		local: func(spec.VIP) (netip.AddrPort, bool, bool) {
			return netip.MustParseAddrPort("10.10.0.5:8080"), true, f.healthy.Load()
		},
		runs: map[string]*vipRun{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.r = &vipRun{spec: testVIP, cancel: cancel, done: f.done}
	go func() {
		defer close(f.done)
		h.run(ctx, f.r)
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
	})
	return f
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestVIPElection(t *testing.T) {
	announce := "announce 192.168.0.100 via 127.0.0.1"
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a free VIP is claimed, announced, then delivered and kept live by renewals", func(t *testing.T) {
			f := startVIP(t, &fakeElection{}, true)
			waitUntil(t, 2*time.Second, "delivering", f.w.live)
			if got := f.w.log(); len(got) < 2 || got[0] != announce || got[1] != "live" {
				t.Fatalf("events %v, want the announce before the delivery", got)
			}
			waitUntil(t, 2*time.Second, "three renewals", func() bool { _, n := f.e.record(); return n >= 3 })
			time.Sleep(vip.Fence + 100*time.Millisecond) // longer than one fence: only renewals keep it live
			if !f.w.live() {
				t.Fatalf("delivery lapsed while renewals succeed")
			}
			if rec, _ := f.e.record(); rec.Holder != "me" || rec.Epoch != 1 || rec.LastFailover != nil {
				t.Fatalf("record %+v, want held by me at epoch 1 without failover", rec)
			}
		}},
		{"a term lost to another host fences at once and does not fight back", func(t *testing.T) {
			f := startVIP(t, &fakeElection{}, true)
			waitUntil(t, 2*time.Second, "delivering", f.w.live)
			f.e.other("them")
			stolen := time.Now()
			waitUntil(t, 2*time.Second, "fenced", func() bool {
				ev := f.w.log()
				return ev[len(ev)-1] == "fence"
			})
			if took := time.Since(stolen); took >= vip.Fence {
				t.Errorf("fenced %s after the loss, want before the kernel timeout (%s)", took, vip.Fence)
			}
			// The other holder keeps renewing: probes to it miss, yet the
			// record changes, so this host never takes over.
			for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				f.e.mu.Lock()
				rec := *f.e.rec
				f.e.set(&rec)
				f.e.mu.Unlock()
			}
			if rec, _ := f.e.record(); rec.Holder != "them" || f.w.live() {
				t.Fatalf("holder %s, live %v: want them, not live here", rec.Holder, f.w.live())
			}
		}},
		{"a holder that cannot renew fences itself within the fence", func(t *testing.T) {
			f := startVIP(t, &fakeElection{}, true)
			waitUntil(t, 2*time.Second, "delivering", f.w.live)
			f.e.failRenewals(errors.New("etcd unreachable"))
			cut := time.Now()
			waitUntil(t, 2*time.Second, "fenced", func() bool {
				ev := f.w.log()
				return ev[len(ev)-1] == "fence"
			})
			if took := time.Since(cut); took > vip.Fence+200*time.Millisecond {
				t.Errorf("fenced %s after renewals stopped, want about %s", took, vip.Fence)
			}
		}},
		{"a holder whose store pauses past the fence delivers again on the next renewal, same term", func(t *testing.T) {
			f := startVIP(t, &fakeElection{}, true)
			waitUntil(t, 2*time.Second, "delivering", f.w.live)
			f.e.failRenewals(context.DeadlineExceeded)
			waitUntil(t, 2*time.Second, "fenced", func() bool { return !f.w.live() })
			if _, held := f.r.held(); !held {
				t.Fatalf("a pausing holder answers probes with not held; candidates would move the VIP")
			}
			f.e.failRenewals(nil)
			waitUntil(t, 2*time.Second, "delivering again", f.w.live)
			if rec, _ := f.e.record(); rec.Holder != "me" || rec.Epoch != 1 {
				t.Fatalf("record %+v, want the same term (me, epoch 1)", rec)
			}
		}},
		{"a holder that cannot renew for the grace period gives the term up", func(t *testing.T) {
			f := startVIP(t, &fakeElection{}, true)
			waitUntil(t, 2*time.Second, "delivering", f.w.live)
			f.e.failRenewals(errors.New("etcd unreachable"))
			cut := time.Now()
			waitUntil(t, vip.Grace+2*time.Second, "term given up", func() bool { _, held := f.r.held(); return !held })
			if took := time.Since(cut); took < vip.Grace-vip.RenewInterval {
				t.Errorf("gave the term up %s after renewals stopped, want after the grace period (%s)", took, vip.Grace)
			}
		}},
		{"an unhealthy holder resigns: fence, release, withdraw", func(t *testing.T) {
			f := startVIP(t, &fakeElection{}, true)
			waitUntil(t, 2*time.Second, "delivering", f.w.live)
			f.healthy.Store(false)
			waitUntil(t, 2*time.Second, "withdrawn", func() bool {
				ev := f.w.log()
				return strings.HasPrefix(ev[len(ev)-1], "withdraw")
			})
			ev := f.w.log()
			if ev[len(ev)-2] != "fence" || ev[len(ev)-1] != "withdraw 192.168.0.100 via 127.0.0.1" {
				t.Errorf("events %v, want fence then withdraw", ev)
			}
			if rec, _ := f.e.record(); rec.Holder != "" {
				t.Errorf("record after resigning %+v, want no holder", rec)
			}
		}},
		{"an unhealthy candidate stays out", func(t *testing.T) {
			f := startVIP(t, &fakeElection{}, false)
			time.Sleep(300 * time.Millisecond) // nothing may happen during it
			if rec, _ := f.e.record(); rec != nil || len(f.w.log()) != 0 {
				t.Fatalf("record %+v, events %v: want nothing", rec, f.w.log())
			}
		}},
		{"a silent holder is taken over after missed probes and the fence", func(t *testing.T) {
			e := &fakeElection{}
			e.other("them") // 127.0.0.2 answers no probes and never renews
			f := startVIP(t, e, true)
			start := time.Now()
			waitUntil(t, 3*time.Second, "taken over", func() bool { rec, _ := e.record(); return rec.Holder == "me" })
			if took := time.Since(start); took < vip.Fence {
				t.Errorf("took over %s after starting, before the fence (%s) ran out", took, vip.Fence)
			}
			waitUntil(t, 2*time.Second, "delivering", f.w.live)
			waitUntil(t, 2*time.Second, "the failover's duration written", func() bool {
				e.mu.Lock()
				defer e.mu.Unlock()
				return len(e.updates) > 0
			})
			rec, _ := e.record()
			fo := rec.LastFailover
			if fo == nil || fo.From != "them" || fo.To != "me" || !strings.Contains(fo.Cause, "missed") || fo.Duration <= 0 || rec.Epoch != 2 {
				t.Fatalf("record %+v failover %+v: want them -> me after missed probes, with a duration, epoch 2", rec, fo)
			}
		}},
		{"a candidate whose watch fell behind takes over from the revision its lost claim found", func(t *testing.T) {
			e := &fakeElection{}
			e.other("them")
			e.mu.Lock()
			stale := e.state()
			stale.Seen = time.Now().Add(-time.Second)
			e.view = &stale // the watch stops here...
			rec := *e.rec
			e.set(&rec) // ...and misses the holder's last renewal
			e.mu.Unlock()
			f := startVIP(t, e, true)
			waitUntil(t, 3*time.Second, "taken over", func() bool { rec, _ := e.record(); return rec.Holder == "me" })
			rec2, _ := e.record()
			if rec2.Epoch != 2 || rec2.LastFailover == nil || rec2.LastFailover.From != "them" {
				t.Fatalf("record %+v, want them -> me at epoch 2", rec2)
			}
			waitUntil(t, 2*time.Second, "delivering", f.w.live)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}
