// Package store owns weft's control plane in etcd: the key layout under
// naming.StoreRoot(cluster) and every etcd call, plus the embedded etcd
// members that manager agents run.
//
// Keys, relative to the root "/weft/<cluster>/":
//
//	spec                the applied cluster file (JSON of spec.Cluster)
//	hosts/<host>        model.HostRecord, under the host agent's lease
//	alive/<host>        Presence, under the host resolver's lease
//	assign/<container>  model.Assignment, written by the leader only
//	status/<container>  model.ContainerStatus, written by the container's host agent
//	leader/<lease>      election keys (concurrency.Election)
package store

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// Ports of the embedded members on each manager's underlay address.
const (
	ClientPort = 2379
	PeerPort   = 2380
)

const (
	dialTimeout = 2 * time.Second
	// gRPC keepalive pings of the client's connections to the members.
	keepAliveTime    = 10 * time.Second
	keepAliveTimeout = 2 * time.Second
	// statusRefresh bounds how long PutStatus trusts its cache: after it, an
	// unchanged status is written again, which repairs a status deleted behind
	// this Store's back and keeps Updated from going stale forever.
	statusRefresh = time.Minute
)

// Store is one agent's (or the CLI's) connection to a cluster's etcd. It is
// safe for concurrent use.
type Store struct {
	client *clientv3.Client
	root   string

	watchSeq atomic.Uint64 // numbers the watches' own streams (liveWatch)
	lastView atomic.Pointer[Mirror]

	statusMu      sync.Mutex               // guards statusWritten and serialises status writes
	statusWritten map[string]writtenStatus // container -> what PutStatus last wrote
}

type writtenStatus struct {
	body []byte // JSON with Updated zeroed
	at   time.Time
}

// Snapshot is the cluster's state read at one etcd revision.
type Snapshot struct {
	Spec     *spec.Cluster // nil before the first apply
	Hosts    map[string]model.HostRecord
	Alive    map[string]Presence // hosts whose resolver is alive (see LiveHosts)
	Assign   map[string]model.Assignment
	Status   map[string]model.ContainerStatus
	Rollouts map[string]model.Rollout      // by service (rollout.go)
	Scales   map[string]model.Scale        // by service
	Weights  map[string]model.RouteWeights // live weights, by route (shift.go)
	Shifts   map[string]model.Shift        // by route
	Revision int64
	// Bad lists the values that could not be decoded, sorted by key. They
	// are left out of the maps above (an undecodable spec leaves Spec nil):
	// one bad value never stops the reading of the others.
	Bad []BadValue
}

// BadValue is a key whose value could not be decoded.
type BadValue struct {
	Key  string `json:"key"`
	Kind string `json:"kind"` // the key's part of the layout: "spec", "hosts", "assign", "status", ...
	Name string `json:"name"` // the entry below that part (a host, a container); "" for spec
	Err  string `json:"error"`
}

func (b BadValue) String() string { return b.Key + ": " + b.Err }

// memberConfig is the configuration of every etcd client weft makes: the
// members at endpoints, each connection opened by dial, presenting the
// client certificate of creds.
func memberConfig(ctx context.Context, endpoints []string, creds *tls.Config, dial func(context.Context, string) (net.Conn, error)) clientv3.Config {
	return clientv3.Config{
		Endpoints:   endpoints,
		TLS:         creds,
		DialTimeout: dialTimeout,
		// A member whose network path is cut without a reset (a host cut off,
		// frozen or powered off) leaves its connection looking healthy, and
		// the round-robin balancer keeps sending calls and streams onto it.
		// Pings evict it within keepAliveTime+keepAliveTimeout so calls go to
		// the members that answer; gRPC allows no shorter interval than 10s.
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: keepAliveTimeout,
		PermitWithoutStream:  true,
		// gRPC's reconnect backoff grows to 120s: after a cut of a few
		// seconds a connection would stay down long after the member is back.
		DialOptions: []grpc.DialOption{
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: dialTimeout,
			}),
			grpc.WithContextDialer(dial),
		},
		Context: context.WithoutCancel(ctx),
		// The client's own warnings (retries while a member restarts) are noise
		// for weft, which reports the errors its callers get.
		Logger: zap.NewNop(),
	}
}

// Connect connects to the etcd members at endpoints (client URLs) for the
// named cluster, presenting the client certificate of creds (see
// pki.Files.ClientConfig). It fails when no endpoint answers within 2s.
func Connect(ctx context.Context, endpoints []string, creds *tls.Config, cluster string) (*Store, error) {
	if err := checkEndpoints(endpoints, creds, cluster); err != nil {
		return nil, err
	}
	client, err := clientv3.New(memberConfig(ctx, endpoints, creds, dialMember))
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd at %s: %w", strings.Join(endpoints, ", "), err)
	}
	if err := anyEndpointAnswers(ctx, client, endpoints); err != nil {
		client.Close()
		return nil, err
	}
	return &Store{
		client:        client,
		root:          naming.StoreRoot(cluster),
		statusWritten: map[string]writtenStatus{},
	}, nil
}

// checkEndpoints refuses to connect without endpoints or without a client
// certificate: the members accept nothing else.
func checkEndpoints(endpoints []string, creds *tls.Config, cluster string) error {
	if len(endpoints) == 0 {
		return fmt.Errorf("connecting to the store of cluster %s: no etcd endpoints given (the cluster file names no manager hosts?)", cluster)
	}
	if creds == nil || len(creds.Certificates) == 0 || creds.RootCAs == nil {
		return fmt.Errorf("connecting to the store of cluster %s: no client certificate and CA given: etcd accepts only clients with a certificate of the cluster CA (pki.Files.ClientConfig)", cluster)
	}
	return nil
}

// anyEndpointAnswers asks every endpoint for its status in parallel, because
// gRPC dials lazily: without it a wrong address would only show up as a
// timeout on the first request.
func anyEndpointAnswers(ctx context.Context, client *clientv3.Client, endpoints []string) error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	errs := make(chan error, len(endpoints))
	for _, ep := range endpoints {
		go func() {
			_, err := client.Status(ctx, ep)
			if err != nil {
				err = fmt.Errorf("%s: %w", ep, err)
			}
			errs <- err
		}()
	}
	var failures []error
	for range endpoints {
		err := <-errs
		if err == nil {
			return nil
		}
		failures = append(failures, err)
	}
	return fmt.Errorf("no etcd endpoint answered within %s (are the manager agents running and reachable from here?): %w",
		dialTimeout, errors.Join(failures...))
}

// Close closes the connection. Host registrations and leadership made
// through this Store are not revoked by Close: they expire with their lease,
// as if the process had died. Cancel their contexts first for a clean exit.
func (s *Store) Close() error { return s.client.Close() }

// closed reports whether Close was called, which ends every background loop.
func (s *Store) closed() bool { return s.client.Ctx().Err() != nil }

func (s *Store) specKey() string              { return s.root + "spec" }
func (s *Store) hostsPrefix() string          { return s.root + "hosts/" }
func (s *Store) assignPrefix() string         { return s.root + "assign/" }
func (s *Store) statusPrefix() string         { return s.root + "status/" }
func (s *Store) leaderPrefix() string         { return s.root + "leader" }
func (s *Store) hostKey(name string) string   { return s.hostsPrefix() + name }
func (s *Store) assignKey(name string) string { return s.assignPrefix() + name }
func (s *Store) statusKey(name string) string { return s.statusPrefix() + name }

// PutSpec stores the applied cluster file. It writes only when the JSON
// differs from the stored one, in one transaction, and reports whether it did.
func (s *Store) PutSpec(ctx context.Context, c *spec.Cluster) (changed bool, err error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	body, err := json.Marshal(c)
	if err != nil {
		return false, fmt.Errorf("encoding cluster file %s: %w", c.Name, err)
	}
	key := s.specKey()
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(key), "=", string(body))).
		Else(clientv3.OpPut(key, string(body))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("writing cluster file to %s: %w", key, err)
	}
	return !resp.Succeeded, nil
}

// Spec returns the applied cluster file, or nil, nil when none was applied yet.
func (s *Store) Spec(ctx context.Context) (*spec.Cluster, error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	resp, err := s.client.Get(ctx, s.specKey())
	if err != nil {
		return nil, fmt.Errorf("reading cluster file from %s: %w", s.specKey(), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return decodeSpec(resp.Kvs[0].Value)
}

func decodeSpec(body []byte) (*spec.Cluster, error) {
	var c spec.Cluster
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("decoding stored cluster file: %w", err)
	}
	return &c, nil
}

// RegisterHost puts rec under a lease of ttl (at least 1s; etcd rounds it
// up to its minimum, 2s with the members' timing) and returns after that
// first put. In the background, until ctx ends, it renews the lease and
// re-registers whenever the lease or the record is gone (see register.go);
// when ctx ends it revokes the lease so the host disappears at once.
func (s *Store) RegisterHost(ctx context.Context, rec model.HostRecord, ttl time.Duration) error {
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding host record %s: %w", rec.Name, err)
	}
	r := newRegistration(s, s.hostKey(rec.Name), string(body), ttl)
	if err := r.register(ctx); err != nil {
		return fmt.Errorf("registering host %s: %w", rec.Name, err)
	}
	go r.run(ctx)
	return nil
}

// revoke drops a lease now rather than waiting for its ttl; it runs after
// the caller's context has ended, so it has its own short deadline.
func (s *Store) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	_, _ = s.client.Revoke(ctx, lease) // best effort: the lease expires anyway
}

// Hosts returns the registered, alive hosts by name.
func (s *Store) Hosts(ctx context.Context) (map[string]model.HostRecord, error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	resp, err := s.client.Get(ctx, s.hostsPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing hosts under %s: %w", s.hostsPrefix(), err)
	}
	return decodeAll[model.HostRecord](resp.Kvs, s.hostsPrefix(), nil), nil
}

// Assignments returns the current assignments by container and the etcd
// revision they were read at.
func (s *Store) Assignments(ctx context.Context) (map[string]model.Assignment, int64, error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	resp, err := s.client.Get(ctx, s.assignPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("listing assignments under %s: %w", s.assignPrefix(), err)
	}
	return decodeAll[model.Assignment](resp.Kvs, s.assignPrefix(), nil), resp.Header.Revision, nil
}

// ReplaceAssignments turns prev (what the caller read) into next: it puts
// the assignments that are new or differ and deletes those gone, in one
// transaction that applies only while guard holds (pass Leadership.Guard(),
// or the zero Guard for none). A failed guard returns ErrNotLeader and
// changes nothing.
func (s *Store) ReplaceAssignments(ctx context.Context, prev, next map[string]model.Assignment, guard Guard) error {
	return s.ReplacePlacement(ctx, prev, next, nil, nil, guard)
}

func (s *Store) assignmentOps(prev, next map[string]model.Assignment) ([]clientv3.Op, error) {
	var ops []clientv3.Op
	for _, name := range slices.Sorted(maps.Keys(next)) {
		a := next[name]
		if old, ok := prev[name]; ok && old == a {
			continue
		}
		if a.Container != name {
			return nil, fmt.Errorf("assignment under key %q names container %q: the map key must be the container name", name, a.Container)
		}
		body, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("encoding assignment %s: %w", name, err)
		}
		ops = append(ops, clientv3.OpPut(s.assignKey(name), string(body)))
	}
	for _, name := range slices.Sorted(maps.Keys(prev)) {
		if _, ok := next[name]; !ok {
			ops = append(ops, clientv3.OpDelete(s.assignKey(name)))
		}
	}
	return ops, nil
}

// PutStatus writes a container's status if it differs, Updated aside, from
// what this Store last wrote for it (or that was over a minute ago). It
// assumes this Store is the only writer of the container's status.
func (s *Store) PutStatus(ctx context.Context, st model.ContainerStatus) error {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	unstamped := st
	unstamped.Updated = time.Time{}
	body, err := json.Marshal(unstamped)
	if err != nil {
		return fmt.Errorf("encoding status of %s: %w", st.Container, err)
	}
	// Holding the lock across the write keeps the cache equal to what etcd
	// holds even when two goroutines report the same container at once.
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	now := time.Now()
	last, ok := s.statusWritten[st.Container]
	if ok && bytes.Equal(last.body, body) && now.Sub(last.at) < statusRefresh {
		return nil
	}
	full, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding status of %s: %w", st.Container, err)
	}
	if _, err := s.client.Put(ctx, s.statusKey(st.Container), string(full)); err != nil {
		delete(s.statusWritten, st.Container)
		return fmt.Errorf("writing status of %s: %w", st.Container, err)
	}
	s.statusWritten[st.Container] = writtenStatus{body: body, at: now}
	return nil
}

// DeleteStatus removes a container's status.
func (s *Store) DeleteStatus(ctx context.Context, container string) error {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	delete(s.statusWritten, container)
	if _, err := s.client.Delete(ctx, s.statusKey(container)); err != nil {
		return fmt.Errorf("deleting status of %s: %w", container, err)
	}
	return nil
}

// Statuses returns every container's last reported status by container.
func (s *Store) Statuses(ctx context.Context) (map[string]model.ContainerStatus, error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	resp, err := s.client.Get(ctx, s.statusPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing statuses under %s: %w", s.statusPrefix(), err)
	}
	return decodeAll[model.ContainerStatus](resp.Kvs, s.statusPrefix(), nil), nil
}

// Snapshot reads the spec, hosts, assignments, statuses, rollouts, scales,
// live weights and shifts in one transaction, so they are consistent with
// each other.
func (s *Store) Snapshot(ctx context.Context) (Snapshot, error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	resp, err := s.client.Txn(ctx).Then(
		clientv3.OpGet(s.specKey()),
		clientv3.OpGet(s.hostsPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.assignPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.statusPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.alivePrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.rolloutPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.scalePrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.weightsPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.shiftPrefix(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading a snapshot of %s: %w", s.root, err)
	}
	snap := Snapshot{Revision: resp.Header.Revision}
	snap.Spec = decodeSpecKV(resp.Responses[0].GetResponseRange().Kvs, &snap.Bad)
	snap.Hosts = decodeAll[model.HostRecord](resp.Responses[1].GetResponseRange().Kvs, s.hostsPrefix(), &snap.Bad)
	snap.Assign = decodeAll[model.Assignment](resp.Responses[2].GetResponseRange().Kvs, s.assignPrefix(), &snap.Bad)
	snap.Status = decodeAll[model.ContainerStatus](resp.Responses[3].GetResponseRange().Kvs, s.statusPrefix(), &snap.Bad)
	snap.Alive = decodeAll[Presence](resp.Responses[4].GetResponseRange().Kvs, s.alivePrefix(), &snap.Bad)
	snap.Rollouts = decodeAll[model.Rollout](resp.Responses[5].GetResponseRange().Kvs, s.rolloutPrefix(), &snap.Bad)
	snap.Scales = decodeAll[model.Scale](resp.Responses[6].GetResponseRange().Kvs, s.scalePrefix(), &snap.Bad)
	snap.Weights = byRoute(decodeAll[model.RouteWeights](resp.Responses[7].GetResponseRange().Kvs, s.weightsPrefix(), &snap.Bad))
	snap.Shifts = byRoute(decodeAll[model.Shift](resp.Responses[8].GetResponseRange().Kvs, s.shiftPrefix(), &snap.Bad))
	snap.Bad = s.named(snap.Bad)
	return snap, nil
}

// DeleteAll removes every key of the cluster (for `weft down` and tests).
func (s *Store) DeleteAll(ctx context.Context) error {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	clear(s.statusWritten)
	if _, err := s.client.Delete(ctx, s.root, clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("deleting every key under %s: %w", s.root, err)
	}
	if _, err := s.client.Delete(ctx, s.statsPrefix(), clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("deleting every key under %s: %w", s.statsPrefix(), err)
	}
	return nil
}

// ClientURLs returns the etcd client URLs ("https://<addr>:2379") of the
// hosts of c that have the manager role, in file order.
func ClientURLs(c *spec.Cluster) []string {
	var urls []string
	for _, h := range managers(c) {
		urls = append(urls, ClientURL(h))
	}
	return urls
}

// ClientURL is the client URL of a manager host's member.
func ClientURL(h spec.Host) string { return memberURL(h, ClientPort) }

// PeerURL is the peer URL of a manager host's member.
func PeerURL(h spec.Host) string { return memberURL(h, PeerPort) }

// InitialCluster returns MemberConfig.InitialCluster for c: the peer URL
// ("https://<addr>:2380") of every manager host by name.
func InitialCluster(c *spec.Cluster) map[string]string {
	peers := map[string]string{}
	for _, h := range managers(c) {
		peers[h.Name] = PeerURL(h)
	}
	return peers
}

func managers(c *spec.Cluster) []spec.Host {
	var hosts []spec.Host
	for _, h := range c.Hosts {
		if slices.Contains(h.Roles, spec.RoleManager) && h.Address.IsValid() {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func memberURL(h spec.Host, port int) string {
	return "https://" + net.JoinHostPort(h.Address.String(), strconv.Itoa(port))
}

// decodeAll decodes JSON values keyed by the part of their key after
// prefix. A value that does not decode is left out and added to bad (when
// not nil): one bad value must not hide the others.
func decodeAll[T any](kvs []*mvccpb.KeyValue, prefix string, bad *[]BadValue) map[string]T {
	out := make(map[string]T, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			addBad(bad, string(kv.Key), err)
			continue
		}
		out[strings.TrimPrefix(string(kv.Key), prefix)] = v
	}
	return out
}

// decodeSpecKV decodes the spec key's value if there is one; an undecodable
// one is added to bad and gives nil.
func decodeSpecKV(kvs []*mvccpb.KeyValue, bad *[]BadValue) *spec.Cluster {
	if len(kvs) == 0 {
		return nil
	}
	c, err := decodeSpec(kvs[0].Value)
	if err != nil {
		addBad(bad, string(kvs[0].Key), err)
		return nil
	}
	return c
}

func addBad(bad *[]BadValue, key string, err error) {
	if bad != nil {
		*bad = append(*bad, BadValue{Key: key, Err: err.Error()})
	}
}

// named sorts bad by key and fills in each one's Kind and Name from the
// key layout below the cluster's root.
func (s *Store) named(bad []BadValue) []BadValue {
	for i, b := range bad {
		bad[i].Kind, bad[i].Name, _ = strings.Cut(strings.TrimPrefix(b.Key, s.root), "/")
	}
	slices.SortFunc(bad, func(x, y BadValue) int { return strings.Compare(x.Key, y.Key) })
	return bad
}
