package store

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weft-dev/weft/internal/model"
)

const testHostTTL = 2 * time.Second

// hostLease returns the lease host1's record is under, or 0 when it is not
// listed.
func hostLease(ctx context.Context, s *Store, host string) clientv3.LeaseID {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := s.client.Get(cctx, s.hostKey(host))
	if err != nil || len(resp.Kvs) == 0 {
		return 0
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease)
}

// staysListed fails the test if host drops out of the store at any poll
// during d.
func staysListed(t *testing.T, ctx context.Context, observer *Store, host string, d time.Duration) {
	t.Helper()
	for since := time.Now(); time.Since(since) < d; time.Sleep(100 * time.Millisecond) {
		if hostLease(ctx, observer, host) == 0 {
			t.Fatalf("%s dropped out of the store %s into the check", host, time.Since(since).Round(time.Millisecond))
		}
	}
}

func TestRegisterHostComesBackAfterItsLeaseIsRevoked(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	s := tc.connect(t, tc.endpoints(), cluster)
	observer := tc.connect(t, tc.endpoints(), cluster)
	ctx := testContext(t)
	if err := s.RegisterHost(ctx, model.HostRecord{Name: "host1"}, testHostTTL); err != nil {
		t.Fatalf("RegisterHost: %v", err)
	}
	old := hostLease(ctx, observer, "host1")
	if old == 0 {
		t.Fatal("host1 not listed right after RegisterHost")
	}
	if _, err := observer.client.Revoke(ctx, old); err != nil {
		t.Fatalf("revoking host1's lease behind its back: %v", err)
	}
	revoked := time.Now()
	eventually(t, testHostTTL+500*time.Millisecond, "host1 registered again under a new lease", func() bool {
		l := hostLease(ctx, observer, "host1")
		return l != 0 && l != old
	})
	t.Logf("re-registered %s after the revoke", time.Since(revoked).Round(time.Millisecond))
	staysListed(t, ctx, observer, "host1", 3*testHostTTL)
}

func TestRegisterHostPutsADeletedRecordBack(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	s := tc.connect(t, tc.endpoints(), cluster)
	observer := tc.connect(t, tc.endpoints(), cluster)
	ctx := testContext(t)
	if err := s.RegisterHost(ctx, model.HostRecord{Name: "host1"}, testHostTTL); err != nil {
		t.Fatalf("RegisterHost: %v", err)
	}
	if _, err := observer.client.Delete(ctx, observer.hostKey("host1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, testHostTTL+time.Second, "host1's deleted record written again", func() bool {
		return hostLease(ctx, observer, "host1") != 0
	})
}

// Quorum lost for longer than the lease, then back: the host is listed again
// within one lease period of the store answering, and stays listed.
func TestRegisterHostAfterQuorumLossAndReturn(t *testing.T) {
	tc := startCluster(t, 3)
	cluster := uniqueName("c")
	s := tc.connect(t, tc.endpoints(), cluster)
	observer := tc.connect(t, tc.endpoints(), cluster)
	ctx := testContext(t)
	if err := s.RegisterHost(ctx, model.HostRecord{Name: "host1"}, testHostTTL); err != nil {
		t.Fatalf("RegisterHost: %v", err)
	}
	tc.members[1].Close()
	tc.members[2].Close()
	tc.members[1], tc.members[2] = nil, nil
	time.Sleep(2 * testHostTTL) // the outage must outlast the lease: that is the case under test
	restartCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, i := range []int{1, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := StartMember(restartCtx, tc.configs[i])
			if err != nil {
				t.Errorf("restarting member %d: %v", i, err)
				return
			}
			tc.members[i] = m
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	eventually(t, 20*time.Second, "the store to answer again", func() bool {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := observer.client.Get(cctx, "probe")
		return err == nil
	})
	answering := time.Now()
	eventually(t, testHostTTL+time.Second, "host1 registered within a lease period of the store answering", func() bool {
		return hostLease(ctx, observer, "host1") != 0
	})
	t.Logf("host1 listed %s after the store answered", time.Since(answering).Round(time.Millisecond))
	staysListed(t, ctx, observer, "host1", 3*testHostTTL)
}

// A member cut off from this client without a reset (a frozen path, as when
// its host is cut off the network) must not cost the host its lease while
// the other members answer. Each member is cut in turn, so whichever one the
// client's connections or streams happened to use is cut once.
func TestRegisterHostSurvivesASilentlyCutMember(t *testing.T) {
	tc := startCluster(t, 3)
	cluster := uniqueName("c")
	var proxies []*freezeProxy
	var eps []string
	for _, ep := range tc.endpoints() {
		p := newFreezeProxy(t, ep)
		proxies = append(proxies, p)
		eps = append(eps, p.url())
	}
	s := tc.connect(t, eps, cluster)
	observer := tc.connect(t, tc.endpoints(), cluster)
	ctx := testContext(t)
	if err := s.RegisterHost(ctx, model.HostRecord{Name: "host1"}, testHostTTL); err != nil {
		t.Fatalf("RegisterHost: %v", err)
	}
	m := s.Mirror(ctx)
	for i, p := range proxies {
		p.freeze()
		staysListed(t, ctx, observer, "host1", 3*testHostTTL)
		// Meanwhile the mirror follows changes made through the other members.
		if _, err := observer.client.Put(ctx, observer.hostKey("marker"), `{"name":"marker"}`); err != nil {
			t.Fatal(err)
		}
		put := time.Now()
		eventually(t, 10*time.Second, "the mirror to see a change while a member is cut", func() bool {
			snap, ok := m.Snapshot()
			_, seen := snap.Hosts["marker"]
			return ok && seen
		})
		if _, err := observer.client.Delete(ctx, observer.hostKey("marker")); err != nil {
			t.Fatal(err)
		}
		t.Logf("member %d cut: host1 stayed listed; the mirror saw a change after %s", i, time.Since(put).Round(time.Millisecond))
		p.thaw()
	}
}

// freezeProxy forwards TCP to one member; freeze stops moving bytes without
// closing anything, like a network path that silently drops packets.
type freezeProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	frozen  bool
	thawed  *sync.Cond
	closing bool
}

func newFreezeProxy(t *testing.T, targetURL string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: strings.TrimPrefix(targetURL, "https://")}
	p.thawed = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(func() {
		p.mu.Lock()
		p.closing, p.frozen = true, false
		p.thawed.Broadcast()
		p.mu.Unlock()
		ln.Close()
	})
	return p
}

func (p *freezeProxy) url() string { return "https://" + p.ln.Addr().String() }

func (p *freezeProxy) freeze() { p.mu.Lock(); p.frozen = true; p.mu.Unlock() }

func (p *freezeProxy) thaw() {
	p.mu.Lock()
	p.frozen = false
	p.thawed.Broadcast()
	p.mu.Unlock()
}

func (p *freezeProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			p.waitThawed()
			b, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			go p.pipe(b, c)
			p.pipe(c, b)
		}()
	}
}

func (p *freezeProxy) waitThawed() {
	p.mu.Lock()
	for p.frozen && !p.closing {
		p.thawed.Wait()
	}
	p.mu.Unlock()
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.waitThawed()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}
