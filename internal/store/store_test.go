package store

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/pki"
	"github.com/weft-dev/weft/internal/spec"
)

// testCluster is a set of embedded members on 127.0.0.1 in this process.
type testCluster struct {
	configs []MemberConfig
	members []*Member
	creds   *tls.Config // an agent's client certificate of the cluster's CA
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), rand.IntN(1_000_000))
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startCluster starts n members concurrently (a quorum must be up for any
// of them to become ready) and stops them when the test ends.
func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	token := uniqueName("weft-test-")
	tc := &testCluster{configs: make([]MemberConfig, n), members: make([]*Member, n)}
	// Every member on 127.0.0.1, with certificates of one test CA.
	pkiRoot, sc := t.TempDir(), &spec.Cluster{Name: token}
	for i := range n {
		sc.Hosts = append(sc.Hosts, spec.Host{Name: fmt.Sprintf("m%d", i), Address: netip.MustParseAddr("127.0.0.1"), Roles: []string{spec.RoleManager}})
	}
	if _, err := pki.Ensure(pkiRoot, sc, time.Now()); err != nil {
		t.Fatal(err)
	}
	creds, err := pki.ClientFiles(pkiRoot, token, "m0").ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	tc.creds = creds
	initial := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		cfg := MemberConfig{
			Name:         name,
			DataDir:      filepath.Join(t.TempDir(), "etcd"),
			PeerURL:      fmt.Sprintf("https://127.0.0.1:%d", freePort(t)),
			ClientURL:    fmt.Sprintf("https://127.0.0.1:%d", freePort(t)),
			ClusterToken: token,
			Log:          testLogger(t),
			Server:       pki.ServerFiles(pkiRoot, token, name),
			Peer:         pki.PeerFiles(pkiRoot, token, name),
		}
		initial[name] = cfg.PeerURL
		tc.configs[i] = cfg
	}
	for i := range tc.configs {
		tc.configs[i].InitialCluster = initial
	}
	t.Cleanup(func() {
		for _, m := range tc.members {
			if m != nil {
				m.Close()
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			m, err := StartMember(ctx, tc.configs[i])
			tc.members[i] = m
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("starting %d members: %v", n, err)
	}
	return tc
}

func (tc *testCluster) endpoints() []string {
	var eps []string
	for _, c := range tc.configs {
		eps = append(eps, c.ClientURL)
	}
	return eps
}

func (tc *testCluster) connect(t *testing.T, endpoints []string, cluster string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Connect(ctx, endpoints, tc.creds, cluster)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestThreeMembersElectLeaderSurviveLossAndRejoin(t *testing.T) {
	tc := startCluster(t, 3)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)

	// Every member agrees on one leader.
	var leader uint64
	for _, ep := range tc.endpoints() {
		st, err := s.client.Status(ctx, ep)
		if err != nil {
			t.Fatalf("status of %s: %v", ep, err)
		}
		if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			t.Fatalf("member %s sees leader %x, others %x", ep, st.Leader, leader)
		}
		leader = st.Leader
	}
	leaders := 0
	for _, ep := range tc.endpoints() {
		st, err := s.MemberStatus(ctx, ep)
		if err != nil || !st.HasLeader {
			t.Fatalf("MemberStatus of %s = %+v, %v; want a member that knows the leader", ep, st, err)
		}
		if st.IsLeader {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d members say they lead, want 1", leaders)
	}
	if _, err := s.client.Put(ctx, s.root+"probe", "1"); err != nil {
		t.Fatalf("put on a fresh cluster: %v", err)
	}

	// Stop the leader: the other two elect a new one and keep serving.
	down := -1
	for i, m := range tc.members {
		if uint64(m.etcd.Server.MemberID()) == leader {
			down = i
		}
	}
	if down < 0 {
		t.Fatalf("leader %x is none of the members", leader)
	}
	tc.members[down].Close()
	tc.members[down] = nil
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	if st, err := s.MemberStatus(dctx, tc.configs[down].ClientURL); err == nil {
		t.Errorf("MemberStatus of the stopped member = %+v, want an error", st)
	}
	dcancel()
	eventually(t, 15*time.Second, "a put with one of three members down", func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := s.client.Put(pctx, s.root+"probe", "2")
		return err == nil
	})
	resp, err := s.client.Get(ctx, s.root+"probe")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "2" {
		t.Fatalf("get with one member down = %v, %v; want probe=2", resp, err)
	}

	// Restart it on its data dir: it rejoins and catches up.
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	m, err := StartMember(sctx, tc.configs[down])
	if err != nil {
		t.Fatalf("restarting member %s on its data dir: %v", tc.configs[down].Name, err)
	}
	tc.members[down] = m
	only := tc.connect(t, []string{tc.configs[down].ClientURL}, "unused")
	eventually(t, 10*time.Second, "the restarted member to serve the latest value", func() bool {
		r, err := only.client.Get(ctx, s.root+"probe", clientv3.WithSerializable())
		return err == nil && len(r.Kvs) == 1 && string(r.Kvs[0].Value) == "2"
	})
	members, err := only.client.MemberList(ctx)
	if err != nil || len(members.Members) != 3 {
		t.Fatalf("member list after rejoin = %v, %v; want 3 members", members, err)
	}
	st, err := only.client.Status(ctx, tc.configs[down].ClientURL)
	if err != nil || st.Leader == 0 {
		t.Fatalf("restarted member status = %v, %v; want a leader", st, err)
	}
}

func TestConnectFailsWhenNoEndpointAnswers(t *testing.T) {
	start := time.Now()
	tc := startCluster(t, 1) // for its certificate
	_, err := Connect(context.Background(), []string{fmt.Sprintf("https://127.0.0.1:%d", freePort(t))}, tc.creds, "c")
	if err == nil || !strings.Contains(err.Error(), "no etcd endpoint answered") {
		t.Fatalf("Connect to a closed port = %v; want a clear 'no endpoint answered' error", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("Connect took %s to fail; want about the 2s dial timeout", elapsed)
	}
}

func TestStartMemberRejectsBadConfig(t *testing.T) {
	_, err := StartMember(context.Background(), MemberConfig{Name: "a", PeerURL: "192.168.1.10:2380", ClientURL: "http://127.0.0.1:2379"})
	if err == nil {
		t.Fatal("StartMember accepted a config without DataDir, with a schemeless PeerURL and no InitialCluster")
	}
	for _, want := range []string{"DataDir", "PeerURL", "ClientURL", "InitialCluster", "Server", "Peer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestPutSpecReportsChangeOnce(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)

	if got, err := s.Spec(ctx); err != nil || got != nil {
		t.Fatalf("Spec before any apply = %v, %v; want nil, nil", got, err)
	}
	c := &spec.Cluster{
		Version: 1, Name: "shop", Provider: "lab", Domain: "weft",
		Network: spec.Network{CIDR: netip.MustParsePrefix("192.168.0.0/16"), MTU: 1500},
		Hosts:   []spec.Host{{Name: "host1", Subnet: "a", Address: netip.MustParseAddr("192.168.1.10"), Roles: []string{spec.RoleManager}}},
		Services: []spec.Service{{Name: "web", Command: []string{"web"}, Replicas: 2,
			Health: &spec.Health{HTTP: "/health", Interval: spec.Duration{Duration: time.Second}}}},
	}
	if changed, err := s.PutSpec(ctx, c); err != nil || !changed {
		t.Fatalf("first PutSpec = %v, %v; want changed", changed, err)
	}
	if changed, err := s.PutSpec(ctx, c); err != nil || changed {
		t.Fatalf("second PutSpec of the same file = %v, %v; want unchanged", changed, err)
	}
	got, err := s.Spec(ctx)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("Spec = %+v, %v; want %+v", got, err, c)
	}
	c.Services[0].Replicas = 3
	if changed, err := s.PutSpec(ctx, c); err != nil || !changed {
		t.Fatalf("PutSpec after a change = %v, %v; want changed", changed, err)
	}
}

func TestRegisterHostLeavesOnCancelAndOnDeath(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	observer := tc.connect(t, tc.endpoints(), cluster)
	ctx := testContext(t)
	registered := func(name string) bool {
		hosts, err := observer.Hosts(ctx)
		if err != nil {
			t.Fatalf("Hosts: %v", err)
		}
		_, ok := hosts[name]
		return ok
	}

	// A clean exit revokes at once, well before the ttl.
	rec := model.HostRecord{Name: "host1", Address: netip.MustParseAddr("192.168.1.10"), AgentPid: 42, Manager: true}
	hostCtx, stop := context.WithCancel(ctx)
	if err := observer.RegisterHost(hostCtx, rec, 30*time.Second); err != nil {
		t.Fatalf("RegisterHost: %v", err)
	}
	hosts, err := observer.Hosts(ctx)
	if err != nil || !reflect.DeepEqual(hosts["host1"], rec) {
		t.Fatalf("Hosts after register = %v, %v; want host1 = %+v", hosts, err, rec)
	}
	stop()
	eventually(t, 5*time.Second, "host1 to leave after its context ended", func() bool { return !registered("host1") })

	// A dying agent (client gone, nothing revoked) stays registered while
	// its keepalives last, then drops out after the ttl.
	dying := tc.connect(t, tc.endpoints(), cluster)
	if err := dying.RegisterHost(ctx, model.HostRecord{Name: "host2"}, 2*time.Second); err != nil {
		t.Fatalf("RegisterHost: %v", err)
	}
	if !registered("host2") {
		t.Fatal("host2 not listed right after RegisterHost")
	}
	// Over more than the ttl, keepalives hold the record.
	for held := time.Now(); time.Since(held) < 3*time.Second; time.Sleep(200 * time.Millisecond) {
		if !registered("host2") {
			t.Fatalf("host2 expired %s after registering although its agent kept the lease alive", time.Since(held))
		}
	}
	dying.Close()
	died := time.Now()
	eventually(t, 10*time.Second, "host2 to expire after its agent died", func() bool { return !registered("host2") })
	if gone := time.Since(died); gone < time.Second {
		t.Fatalf("host2 vanished %s after its agent died; want the lease ttl to pass (nothing revokes on death)", gone)
	}
}

func TestAssignmentsReplaceAndStaleGuard(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	a := tc.connect(t, tc.endpoints(), cluster)
	b := tc.connect(t, tc.endpoints(), cluster)
	ctx := testContext(t)

	assign := func(container, host, ip string) model.Assignment {
		return model.Assignment{Container: container, Service: strings.Split(container, "-")[0], Index: 1, Host: host, IP: netip.MustParseAddr(ip)}
	}
	first := map[string]model.Assignment{
		"web-1": assign("web-1", "host1", "10.10.0.5"),
		"db-1":  assign("db-1", "host2", "10.10.0.6"),
	}
	if err := a.ReplaceAssignments(ctx, nil, first, Guard{}); err != nil {
		t.Fatalf("ReplaceAssignments without guard: %v", err)
	}
	got, rev, err := a.Assignments(ctx)
	if err != nil || !reflect.DeepEqual(got, first) || rev == 0 {
		t.Fatalf("Assignments = %v, %d, %v; want %v", got, rev, err, first)
	}

	leaderA, err := a.Lead(ctx, "host1")
	if err != nil {
		t.Fatalf("Lead: %v", err)
	}
	second := map[string]model.Assignment{
		"web-1": assign("web-1", "host3", "10.10.0.5"),
		"api-1": assign("api-1", "host1", "10.10.0.7"),
	}
	if err := a.ReplaceAssignments(ctx, first, second, leaderA.Guard()); err != nil {
		t.Fatalf("ReplaceAssignments as leader: %v", err)
	}
	if got, _, err := a.Assignments(ctx); err != nil || !reflect.DeepEqual(got, second) {
		t.Fatalf("Assignments after replace = %v, %v; want %v (db-1 deleted, web-1 moved, api-1 added)", got, err, second)
	}

	staleGuard := leaderA.Guard()
	if err := leaderA.Resign(ctx); err != nil {
		t.Fatalf("Resign: %v", err)
	}
	leaderB, err := b.Lead(ctx, "host2")
	if err != nil {
		t.Fatalf("Lead by the second candidate: %v", err)
	}
	defer leaderB.Resign(ctx)
	err = a.ReplaceAssignments(ctx, second, first, staleGuard)
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("ReplaceAssignments with a deposed leader's guard = %v; want ErrNotLeader", err)
	}
	if got, _, _ := a.Assignments(ctx); !reflect.DeepEqual(got, second) {
		t.Fatalf("a failed guarded write changed assignments to %v", got)
	}
	if err := b.ReplaceAssignments(ctx, second, first, leaderB.Guard()); err != nil {
		t.Fatalf("ReplaceAssignments by the new leader: %v", err)
	}
}

func TestLeadHandsOverOnResignAndOnDeath(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	a := tc.connect(t, tc.endpoints(), cluster)
	b := tc.connect(t, tc.endpoints(), cluster)
	c := tc.connect(t, tc.endpoints(), cluster)
	ctx := testContext(t)

	leaderA, err := a.Lead(ctx, "a")
	if err != nil {
		t.Fatalf("Lead a: %v", err)
	}
	type result struct {
		l   *Leadership
		err error
	}
	campaign := func(s *Store, id string) <-chan result {
		done := make(chan result, 1)
		go func() {
			l, err := s.Lead(ctx, id)
			done <- result{l, err}
		}()
		return done
	}
	bDone := campaign(b, "b")
	select {
	case r := <-bDone:
		t.Fatalf("b became leader (%v) while a leads", r.err)
	case <-time.After(500 * time.Millisecond):
	}

	if err := leaderA.Resign(ctx); err != nil {
		t.Fatalf("Resign a: %v", err)
	}
	if leaderA.Context().Err() == nil {
		t.Fatal("a's leadership context still live after Resign")
	}
	var leaderB *Leadership
	select {
	case r := <-bDone:
		if r.err != nil {
			t.Fatalf("Lead b: %v", r.err)
		}
		leaderB = r.l
	case <-time.After(5 * time.Second):
		t.Fatal("b did not become leader within 5s of a resigning")
	}

	// b's process dies (client closed, lease not revoked): its term ends
	// locally and c takes over once the lease expires.
	cDone := campaign(c, "c")
	b.Close()
	died := time.Now()
	select {
	case <-leaderB.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("b's leadership context still live 10s after its client closed")
	}
	select {
	case r := <-cDone:
		if r.err != nil {
			t.Fatalf("Lead c: %v", r.err)
		}
		defer r.l.Resign(ctx)
		if took := time.Since(died); took < time.Second {
			t.Fatalf("c became leader %s after b died; want b's lease ttl to pass (nothing revokes on death)", took)
		}
		if r.l.Context().Err() != nil {
			t.Fatal("c's fresh leadership context is already done")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("c did not become leader within 10s of b dying")
	}

}

func TestLeadEndsWhenKeysAreDeleted(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	l, err := s.Lead(ctx, "a")
	if err != nil {
		t.Fatalf("Lead: %v", err)
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatalf("DeleteAll: %v", err)
	}
	select {
	case <-l.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("leadership still live 5s after its key was deleted")
	}
}

func TestChangesFiresOnPutAndClosesWithContext(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	watchCtx, stop := context.WithCancel(ctx)
	changes := s.Changes(watchCtx)

	select {
	case <-changes:
		t.Fatal("Changes fired before anything changed")
	default:
	}
	// Another cluster's keys are not this cluster's changes.
	other := tc.connect(t, tc.endpoints(), uniqueName("other"))
	if _, err := other.PutSpec(ctx, &spec.Cluster{Name: "other"}); err != nil {
		t.Fatalf("PutSpec other: %v", err)
	}
	if err := s.PutStatus(ctx, model.ContainerStatus{Container: "web-1", State: model.StateRunning}); err != nil {
		t.Fatalf("PutStatus: %v", err)
	}
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("Changes did not fire within 5s of a put")
	}
	// Many puts coalesce into at most one pending signal.
	for i := range 20 {
		if _, err := s.client.Put(ctx, s.root+"burst", strconv.Itoa(i)); err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	eventually(t, 5*time.Second, "a signal for the burst", func() bool { return len(changes) == 1 })
	<-changes
	stop()
	eventually(t, 5*time.Second, "the channel to close after its context ended", func() bool {
		select {
		case _, ok := <-changes:
			return !ok
		default:
			return false
		}
	})
}

func TestStatusesWrittenOnlyWhenChanged(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	modRevision := func() int64 {
		resp, err := s.client.Get(ctx, s.statusKey("web-1"))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get status key = %v, %v", resp, err)
		}
		return resp.Kvs[0].ModRevision
	}
	st := model.ContainerStatus{Container: "web-1", Service: "web", Host: "host1", State: model.StateStarting,
		Health: model.HealthStarting, IP: netip.MustParseAddr("10.10.0.5"), Updated: time.Now().UTC().Round(0)}
	if err := s.PutStatus(ctx, st); err != nil {
		t.Fatalf("PutStatus: %v", err)
	}
	first := modRevision()
	st.Updated = st.Updated.Add(time.Second)
	if err := s.PutStatus(ctx, st); err != nil {
		t.Fatalf("PutStatus: %v", err)
	}
	if rev := modRevision(); rev != first {
		t.Fatalf("status rewritten (mod revision %d -> %d) although only Updated changed", first, rev)
	}
	st.State, st.Health = model.StateRunning, model.HealthHealthy
	if err := s.PutStatus(ctx, st); err != nil {
		t.Fatalf("PutStatus: %v", err)
	}
	if rev := modRevision(); rev == first {
		t.Fatal("status not rewritten although its state changed")
	}
	got, err := s.Statuses(ctx)
	if err != nil || !reflect.DeepEqual(got, map[string]model.ContainerStatus{"web-1": st}) {
		t.Fatalf("Statuses = %v, %v; want web-1 = %+v", got, err, st)
	}

	// After a delete the same status is written again.
	if err := s.DeleteStatus(ctx, "web-1"); err != nil {
		t.Fatalf("DeleteStatus: %v", err)
	}
	if got, err := s.Statuses(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Statuses after delete = %v, %v; want none", got, err)
	}
	if err := s.PutStatus(ctx, st); err != nil {
		t.Fatalf("PutStatus: %v", err)
	}
	if got, _ := s.Statuses(ctx); len(got) != 1 {
		t.Fatalf("the same status was not written again after DeleteStatus: %v", got)
	}
}

func TestSnapshotReadsEverythingAtOneRevision(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)

	empty, err := s.Snapshot(ctx)
	if err != nil || empty.Spec != nil || len(empty.Hosts)+len(empty.Assign)+len(empty.Status) != 0 {
		t.Fatalf("Snapshot of an empty cluster = %+v, %v", empty, err)
	}
	c := &spec.Cluster{Name: "shop", Version: 1}
	if _, err := s.PutSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	host := model.HostRecord{Name: "host1", Address: netip.MustParseAddr("192.168.1.10")}
	if err := s.RegisterHost(ctx, host, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	a := model.Assignment{Container: "web-1", Service: "web", Index: 1, Host: "host1", IP: netip.MustParseAddr("10.10.0.5")}
	if err := s.ReplaceAssignments(ctx, nil, map[string]model.Assignment{"web-1": a}, Guard{}); err != nil {
		t.Fatal(err)
	}
	st := model.ContainerStatus{Container: "web-1", State: model.StateRunning}
	if err := s.PutStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	_, rev, err := s.Assignments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if !reflect.DeepEqual(snap.Spec, c) || !reflect.DeepEqual(snap.Hosts["host1"], host) ||
		!reflect.DeepEqual(snap.Assign["web-1"], a) || !reflect.DeepEqual(snap.Status["web-1"], st) || snap.Revision < rev {
		t.Fatalf("Snapshot = %+v; want spec, host1, web-1 assignment and status at revision >= %d", snap, rev)
	}

	if err := s.DeleteAll(ctx); err != nil {
		t.Fatalf("DeleteAll: %v", err)
	}
	resp, err := s.client.Get(ctx, s.root, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("keys left after DeleteAll = %d, %v", resp.Count, err)
	}
}

func TestURLsListManagers(t *testing.T) {
	c := &spec.Cluster{Hosts: []spec.Host{
		{Name: "h1", Address: netip.MustParseAddr("192.168.1.10"), Roles: []string{spec.RoleManager}},
		{Name: "h2", Address: netip.MustParseAddr("192.168.2.10")},
		{Name: "h3", Address: netip.MustParseAddr("192.168.3.10"), Roles: []string{"worker", spec.RoleManager}},
	}}
	want := []string{"https://192.168.1.10:2379", "https://192.168.3.10:2379"}
	if got := ClientURLs(c); !reflect.DeepEqual(got, want) {
		t.Fatalf("ClientURLs = %v; want %v", got, want)
	}
	wantPeers := map[string]string{"h1": "https://192.168.1.10:2380", "h3": "https://192.168.3.10:2380"}
	if got := InitialCluster(c); !reflect.DeepEqual(got, wantPeers) {
		t.Fatalf("InitialCluster = %v; want %v", got, wantPeers)
	}
}

// TestMemberMemory reports what one member (and a client writing 100
// statuses) costs in resident memory. Run it alone for a meaningful number:
// go test -run TestMemberMemory -v ./internal/store/
func TestMemberMemory(t *testing.T) {
	debug.FreeOSMemory()
	before := vmRSSKiB(t)
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	for i := range 100 {
		if err := s.PutStatus(ctx, model.ContainerStatus{Container: fmt.Sprintf("web-%d", i), State: model.StateRunning}); err != nil {
			t.Fatalf("PutStatus: %v", err)
		}
	}
	after := vmRSSKiB(t)
	t.Logf("VmRSS before %d KiB, after starting one member %d KiB: delta %d KiB", before, after, after-before)
}

func vmRSSKiB(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatalf("reading /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("parsing VmRSS %q: %v", rest, err)
			}
			return kib
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// restart stops member i and starts it again on its data dir and ports.
func (tc *testCluster) restart(t *testing.T, i int, whileDown func()) {
	t.Helper()
	tc.members[i].Close()
	tc.members[i] = nil
	whileDown()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := StartMember(ctx, tc.configs[i])
	if err != nil {
		t.Fatalf("restarting member %s: %v", tc.configs[i].Name, err)
	}
	tc.members[i] = m
}

func TestRegisterHostReregistersAfterLeaseLoss(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	if err := s.RegisterHost(ctx, model.HostRecord{Name: "host1"}, 2*time.Second); err != nil {
		t.Fatalf("RegisterHost: %v", err)
	}
	// Down for longer than the ttl: the client gives the lease up.
	tc.restart(t, 0, func() { time.Sleep(3 * time.Second) })

	listed := func() bool {
		hosts, err := s.Hosts(ctx)
		return err == nil && hosts["host1"].Name == "host1"
	}
	eventually(t, 10*time.Second, "host1 to be listed after etcd restarted", listed)
	// The restored old lease is not kept alive by anyone and expires within
	// a few seconds; only a fresh registration keeps host1 listed past that.
	for since := time.Now(); time.Since(since) < 6*time.Second; time.Sleep(200 * time.Millisecond) {
		if !listed() {
			t.Fatalf("host1 dropped out %s after etcd restarted: not re-registered under a live lease", time.Since(since))
		}
	}
}

func TestChangesResumesAfterRestartAndCompaction(t *testing.T) {
	tc := startCluster(t, 3)
	cluster := uniqueName("c")
	// The watcher talks to member 0 only, so stopping it breaks the watch.
	watcher := tc.connect(t, tc.endpoints()[:1], cluster)
	writer := tc.connect(t, tc.endpoints()[1:], cluster)
	ctx := testContext(t)
	changes := watcher.Changes(ctx)

	tc.restart(t, 0, func() {
		// Changes made while the watcher's member is down, then compacted
		// away, can only be reported as "something changed".
		for i := range 5 {
			if _, err := writer.client.Put(ctx, writer.root+"k", strconv.Itoa(i)); err != nil {
				t.Fatalf("put while member 0 is down: %v", err)
			}
		}
		resp, err := writer.client.Get(ctx, writer.root+"k")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if _, err := writer.client.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
			t.Fatalf("compact: %v", err)
		}
	})
	select {
	case <-changes:
	case <-time.After(15 * time.Second):
		t.Fatal("Changes did not report the changes compacted away while its member was down")
	}
	// And the watch works again afterwards.
	eventually(t, 15*time.Second, "a signal for a put after the restart", func() bool {
		if _, err := writer.client.Put(ctx, writer.root+"after", "1"); err != nil {
			t.Fatalf("put after restart: %v", err)
		}
		select {
		case <-changes:
			return true
		case <-time.After(time.Second):
			return false
		}
	})
}
