package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/agent"
	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/vip"
)

const vipTmpl = `version: 1
name: NAME
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24, c: 192.168.3.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
# The VIP alone: the gateways stay where they are while their hosts are down.
reschedule_after: 24h
# The store lives on host3 alone, which is never crashed or cut: these
# tests are about the VIP (TestVIPFailoverManagers makes every host a member).
hosts:
  - {name: host1, subnet: a, roles: [worker]}
  - {name: host2, subnet: b, roles: [worker]}
  - {name: host3, subnet: c, roles: [manager]}
vips:
  - {name: front, address: 192.168.0.100, port: 80, services: [gw-1, gw-2]}
publish:
  - {listen: "127.0.0.1:PUBPORT", vip: front}
services:
  gw-1:
    command: [HELLO, -listen, ":8080", -name, gw-1]
    host: host1
    port: 8080
    health: {http: /health, interval: 200ms}
  gw-2:
    command: [HELLO, -listen, ":8080", -name, gw-2]
    host: host2
    port: 8080
    health: {http: /health, interval: 200ms}
`

var vipAddr = netip.MustParseAddr("192.168.0.100")

// vipLoad is a client loop: GET /health through addr, every interval, each
// request with a short timeout, from a connection made by dial.
type vipLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	lastFail   time.Time
	lastOK     time.Time
}

func (l *vipLoad) run(ctx context.Context, interval time.Duration, dial func(ctx context.Context) (net.Conn, error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			ok := get(rctx, dial)
			if ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			if ok {
				l.ok.Add(1)
				l.lastOK = time.Now()
			} else {
				l.failed.Add(1)
				l.lastFail = time.Now()
			}
		})
	}
}

func get(ctx context.Context, dial func(ctx context.Context) (net.Conn, error)) bool {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }, DisableKeepAlives: true}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://vip/health", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// vipLab is one VIP test's cluster (vipTmpl with a free publish port) and
// its faults: every host still faulted is restored when the test ends, also
// on failure.
type vipLab struct {
	name    string
	port    int
	c       cluster
	l       *lab.Lab
	ann     lab.RouteAnnouncer
	faulted sync.Map
}

// The gateway hosts of vipTmpl, their underlay addresses, and each one's
// other.
var (
	vipHostAddrs = map[string]netip.Addr{"host1": netip.MustParseAddr("192.168.1.10"), "host2": netip.MustParseAddr("192.168.2.10")}
	vipOther     = map[string]string{"host1": "host2", "host2": "host1"}
)

func upVIPLab(t *testing.T, prefix, tmpl string) *vipLab {
	t.Helper()
	v := &vipLab{name: uniqueName(prefix), port: freePort(t), l: &lab.Lab{}}
	v.ann = lab.RouteAnnouncer{Cluster: v.name}
	v.c = writeCluster(t, v.name, strings.ReplaceAll(tmpl, "PUBPORT", fmt.Sprint(v.port)))
	upCluster(t, v.c)
	t.Cleanup(func() {
		v.faulted.Range(func(h, _ any) bool {
			_ = v.l.Restore(context.Background(), v.name, h.(string))
			return true
		})
	})
	return v
}

// fault applies a lab fault (Crash, Cut) to host; unless the test undoes
// it first, the host is restored when the test ends (Restore also ends a
// cut: it thaws and sets the link up).
func (v *vipLab) fault(ctx context.Context, t *testing.T, host string, f func(*lab.Lab, context.Context, string, string) error) {
	t.Helper()
	if err := f(v.l, ctx, v.name, host); err != nil {
		t.Fatal(err)
	}
	v.faulted.Store(host, true)
}

// undo ends host's fault (Restore, Heal).
func (v *vipLab) undo(ctx context.Context, t *testing.T, host string, f func(*lab.Lab, context.Context, string, string) error) {
	t.Helper()
	if err := f(v.l, ctx, v.name, host); err != nil {
		t.Fatal(err)
	}
	v.faulted.Delete(host)
}

func (v *vipLab) holder(ctx context.Context) (string, error) {
	return vipHolder(ctx, v.ann, vipHostAddrs)
}

// waitHolder waits until the VIP has a holder and answers, and returns it.
func (v *vipLab) waitHolder(ctx context.Context, t *testing.T, load *vipLoad) string {
	t.Helper()
	var first string
	eventually(t, 30*time.Second, "the VIP has a holder and answers", func() error {
		h, err := v.holder(ctx)
		if err != nil {
			return err
		}
		if !load.okSince(time.Now().Add(-200 * time.Millisecond)) {
			return fmt.Errorf("no request through the VIP succeeded lately")
		}
		first = h
		return nil
	})
	return first
}

// crashMoves crashes holder and waits until the VIP moved to the other
// gateway host and answers again; it returns that host.
func (v *vipLab) crashMoves(ctx context.Context, t *testing.T, load *vipLoad, holder, what string) string {
	t.Helper()
	crashAt := time.Now()
	v.fault(ctx, t, holder, (*lab.Lab).Crash)
	second := vipOther[holder]
	eventually(t, 15*time.Second, what+"the VIP moves to "+second, func() error {
		if h, err := v.holder(ctx); err != nil || h != second {
			return fmt.Errorf("holder %s (%v)", h, err)
		}
		if !load.okSince(crashAt) {
			return fmt.Errorf("no request succeeded since the crash")
		}
		return nil
	})
	t.Logf("%scrash of %s: the VIP answered again after %s", what, holder, time.Since(crashAt).Round(time.Millisecond))
	return second
}

// routerLoad starts the client loop inside the lab, entering where a VPC
// client would (the router namespace): a request through the VIP every 20 ms.
func routerLoad(ctx context.Context, bg *sync.WaitGroup, cluster string) *vipLoad {
	router := naming.RouterNetns(cluster)
	load := &vipLoad{}
	bg.Go(func() {
		load.run(ctx, 20*time.Millisecond, func(ctx context.Context) (net.Conn, error) {
			var conn net.Conn
			err := nsthread.DoNamed(router, func() error {
				var err error
				conn, err = (&net.Dialer{}).DialContext(ctx, "tcp4", netip.AddrPortFrom(vipAddr, 80).String())
				return err
			})
			return conn, err
		})
	})
	return load
}

// vipHolder is the host the router's VIP route leads to.
func vipHolder(ctx context.Context, ann lab.RouteAnnouncer, addrs map[string]netip.Addr) (string, error) {
	target, ok, err := ann.Target(ctx, vipAddr)
	if err != nil || !ok {
		return "", fmt.Errorf("no route for the VIP: %v", err)
	}
	for h, a := range addrs {
		if a == target {
			return h, nil
		}
	}
	return "", fmt.Errorf("the VIP goes to %s", target)
}

func (l *vipLoad) okSince(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastOK.After(t)
}

func TestVIPFailover(t *testing.T) {
	vl := upVIPLab(t, "tv", vipTmpl)
	name, port, c, ann, other := vl.name, vl.port, vl.c, vl.ann, vipOther
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Sampler: the number of gateway hosts whose kernel delivers the VIP,
	// every 10 ms, for the whole test. Fencing: never two.
	var samples, doubles atomic.Int64
	var hostNS []netns.NsHandle
	for _, h := range []string{"host1", "host2"} {
		ns, err := netns.GetFromName(naming.HostNetns(name, h))
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		hostNS = append(hostNS, ns)
	}
	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancel()
	bg.Go(func() {
		for ctx.Err() == nil {
			live := 0
			for _, ns := range hostNS {
				vips, err := vip.Delivery{Table: agent.VIPTable, NetNS: int(ns)}.LiveVIPs()
				if err == nil && slices.Contains(vips, vipAddr) {
					live++
				}
			}
			samples.Add(1)
			if live > 1 {
				doubles.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	load := routerLoad(ctx, &bg, name)
	holder := func() (string, error) { return vl.holder(ctx) }
	first := vl.waitHolder(ctx, t, load)

	// Crash the holder: the VIP moves to the other host and the loop recovers.
	second := vl.crashMoves(ctx, t, load, first, "")
	vl.undo(ctx, t, first, (*lab.Lab).Restore)

	// After the restore the VIP stays where it is (no flapping back), and
	// status shows the holder and the failover.
	var st api.Status
	eventually(t, 30*time.Second, "every agent up again and the failover in status", func() error {
		st = c.status(t)
		for _, h := range st.Hosts {
			if h.Agent != "up" {
				return fmt.Errorf("host %s agent %s", h.Name, h.Agent)
			}
		}
		if len(st.VIPs) != 1 || st.VIPs[0].LastFailover == nil {
			return fmt.Errorf("vips = %+v", st.VIPs)
		}
		// The new holder writes the measured duration with the renewal
		// after its claim.
		if f := st.VIPs[0].LastFailover; f.DurationMS <= 0 {
			return fmt.Errorf("last failover %+v has no duration yet", f)
		}
		return nil
	})
	v := st.VIPs[0]
	if v.Name != "front" || v.Address != vipAddr.String() || v.Holder != second {
		t.Errorf("status vip = %+v, want front %s held by %s", v, vipAddr, second)
	}
	if f := v.LastFailover; f.From != first || f.To != second || !strings.Contains(f.Cause, "missed") || f.DurationMS <= 0 {
		t.Errorf("last failover = %+v, want %s -> %s after missed probes, with a duration", f, first, second)
	}
	stable := time.Now()
	for time.Since(stable) < 2*time.Second {
		if h, err := holder(); err != nil || h != second {
			t.Fatalf("after the restore the VIP went to %s (%v); it should stay on %s", h, err, second)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Cut (not crash) the holder: it is alive but cannot renew, so it
	// fences itself while the other host takes over; the sampler checks
	// that no instant had both delivering.
	cutAt := time.Now()
	vl.fault(ctx, t, second, (*lab.Lab).Cut)
	eventually(t, 15*time.Second, "the VIP moves back to "+first+" after a cut", func() error {
		if h, err := holder(); err != nil || h != first {
			return fmt.Errorf("holder %s (%v)", h, err)
		}
		if !load.okSince(cutAt) {
			return fmt.Errorf("no request succeeded since the cut")
		}
		return nil
	})
	eventually(t, 5*time.Second, "the cut host stops delivering", func() error {
		vips, err := vip.Delivery{Table: agent.VIPTable, NetNS: int(hostNS[slices.Index([]string{"host1", "host2"}, second)])}.LiveVIPs()
		if err != nil || slices.Contains(vips, vipAddr) {
			return fmt.Errorf("live %v (%v)", vips, err)
		}
		return nil
	})
	vl.undo(ctx, t, second, (*lab.Lab).Heal)
	eventually(t, 30*time.Second, "every agent up after the heal", func() error {
		for _, h := range c.status(t).Hosts {
			if h.Agent != "up" {
				return fmt.Errorf("host %s agent %s", h.Name, h.Agent)
			}
		}
		return nil
	})

	// Publishing through the VIP on 127.0.0.1: cut the gateway host that
	// does not hold the VIP; after the first 3 s no request fails.
	healedAt := time.Now()
	eventually(t, 15*time.Second, "the VIP answers after the heal", func() error {
		if !load.okSince(healedAt) {
			return fmt.Errorf("no request through the VIP succeeded since the heal; %s", vipState(ctx, ann, hostNS))
		}
		return nil
	})
	holderNow, err := holder()
	if err != nil {
		t.Fatal(err)
	}
	idle := other[holderNow]
	pub := &vipLoad{}
	pctx, pcancel := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Go(func() {
		pub.run(pctx, 20*time.Millisecond, func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		})
	})
	vl.fault(ctx, t, idle, (*lab.Lab).Cut)
	sleepFor(3 * time.Second)
	failedAt3s := pub.failed.Load()
	sleepFor(5 * time.Second)
	pcancel()
	pwg.Wait()
	if n := pub.failed.Load() - failedAt3s; n != 0 || pub.ok.Load() == 0 {
		t.Errorf("through 127.0.0.1:%d with %s cut: %d failed after the first 3s (%d ok in all); %s", port, idle, n, pub.ok.Load(), vipState(ctx, ann, hostNS))
	}
	vl.undo(ctx, t, idle, (*lab.Lab).Heal)

	cancel()
	bg.Wait()
	if samples.Load() < 100 || doubles.Load() != 0 {
		t.Errorf("%d of %d samples had two hosts delivering the VIP; want 0 (and at least 100 samples)", doubles.Load(), samples.Load())
	}
	t.Logf("loop through the VIP: %d ok, %d failed; %d delivery samples, none with two holders", load.ok.Load(), load.failed.Load(), samples.Load())
}

// sleepFor waits a fixed time on purpose: the test measures failures over
// a window, it does not wait for a condition.
func sleepFor(d time.Duration) { time.Sleep(d) }

// vipState describes the VIP's route and each gateway host's delivery, for
// failure messages.
func vipState(ctx context.Context, ann lab.RouteAnnouncer, hostNS []netns.NsHandle) string {
	target, ok, err := ann.Target(ctx, vipAddr)
	out := fmt.Sprintf("route via %s (%v, %v)", target, ok, err)
	for i, ns := range hostNS {
		vips, err := vip.Delivery{Table: agent.VIPTable, NetNS: int(ns)}.LiveVIPs()
		out += fmt.Sprintf("; host%d live %v (%v)", i+1, vips, err)
	}
	return out
}

func TestVIPActiveActive(t *testing.T) {
	name := uniqueName("ta")
	port := freePort(t)
	tmpl := strings.ReplaceAll(vipTmpl, "PUBPORT", fmt.Sprint(port))
	tmpl = strings.Replace(tmpl, "services: [gw-1, gw-2]}", "services: [gw-1, gw-2], mode: active-active}", 1)
	c := writeCluster(t, name, tmpl)
	upCluster(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &lab.Lab{}
	ann := lab.RouteAnnouncer{Cluster: name}
	one, two := netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("192.168.2.10")
	crashed := false
	t.Cleanup(func() {
		if crashed {
			_ = l.Restore(context.Background(), name, "host1")
		}
	})
	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancel()
	load := routerLoad(ctx, &bg, name)
	routedTo := func(want ...netip.Addr) func() error {
		return func() error {
			got, err := ann.Targets(ctx, vipAddr)
			if err != nil || !slices.Equal(got, want) {
				return fmt.Errorf("route via %v (%v), want %v", got, err, want)
			}
			return nil
		}
	}
	eventually(t, 30*time.Second, "one multipath route to both gateway hosts", routedTo(one, two))
	st := c.status(t)
	if len(st.VIPs) != 1 || st.VIPs[0].Mode != "active-active" || !slices.Equal(st.VIPs[0].Holders, []string{"host1", "host2"}) {
		t.Fatalf("status vips = %+v, want active-active held by host1 and host2", st.VIPs)
	}
	since := time.Now()
	eventually(t, 10*time.Second, "requests through the VIP succeed", func() error {
		if !load.okSince(since) {
			return fmt.Errorf("none yet")
		}
		return nil
	})

	crashAt := time.Now()
	if err := l.Crash(ctx, name, "host1"); err != nil {
		t.Fatal(err)
	}
	crashed = true
	eventually(t, 15*time.Second, "the route leads to host2 only", routedTo(two))
	eventually(t, 10*time.Second, "requests succeed after the crash", func() error {
		if !load.okSince(crashAt) {
			return fmt.Errorf("none since the crash")
		}
		return nil
	})
	t.Logf("crash of host1: the route left it after %s", time.Since(crashAt).Round(time.Millisecond))
	if err := l.Restore(ctx, name, "host1"); err != nil {
		t.Fatal(err)
	}
	crashed = false
	eventually(t, 30*time.Second, "host1 back in the route", routedTo(one, two))
}

// TestVIPFailoverManagers crashes the holder when every host is an etcd
// member, so that the holder's crash also takes an etcd member (often the
// leader) away: the VIP still moves every time, and stays where it moved
// after the crashed host returns. (A candidate's watch or lease stream left
// on the frozen member once kept the VIP from moving at all, or moved it
// back when the new holder's lease expired under it.)
func TestVIPFailoverManagers(t *testing.T) {
	v := upVIPLab(t, "tvm", strings.ReplaceAll(vipTmpl, "roles: [worker]", "roles: [manager]"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancel()
	load := routerLoad(ctx, &bg, v.name)
	holder := func() (string, error) { return v.holder(ctx) }
	first := v.waitHolder(ctx, t, load)
	for round := range 4 {
		second := v.crashMoves(ctx, t, load, first, fmt.Sprintf("round %d: ", round))
		v.undo(ctx, t, first, (*lab.Lab).Restore)
		// Longer than the VIP lease (3 s): a holder whose lease was not
		// kept alive would lose the key here.
		for stable := time.Now(); time.Since(stable) < 4*time.Second; time.Sleep(50 * time.Millisecond) {
			if h, err := holder(); err != nil || h != second {
				t.Fatalf("round %d: after %s returned the VIP went to %s (%v); it should stay on %s", round, first, h, err, second)
			}
		}
		first = second
	}
}
