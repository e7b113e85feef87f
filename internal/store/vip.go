package store

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
)

// VIP keys live under their own root, "/weft-vip/<cluster>/<vip>", not
// under the cluster's root: a holder renews its key every 100 ms, and the
// agents' mirrors and change watchers of the cluster root would otherwise
// wake up ten times a second for nothing. Each key holds a
// model.VIPRecord, written under the holder's lease.

// vipLeaseTTLSeconds is how long a dead holder's key outlives it when no
// candidate takes over; candidates do not wait for it (they take over after
// missed probes and a renewal silence, see the agent).
const vipLeaseTTLSeconds = 3

// ErrVIPLost is returned by a term's writes when another host claimed the
// VIP since this term's last write.
var ErrVIPLost = errors.New("the VIP was claimed by another host")

// ErrVIPClaimLost is returned by ClaimVIP when the key changed since the
// revision the claim was based on (another candidate won, or the holder
// renewed).
var ErrVIPClaimLost = errors.New("the VIP's key changed since it was read: another claim or renewal came first")

// ClaimLostError is the ErrVIPClaimLost of one claim, with the key as the
// claim's transaction found it: a candidate whose watch fell behind learns
// the newer revision from it (VIPWatch.Observe) instead of claiming on the
// stale one again.
type ClaimLostError struct{ Current VIPState }

func (e *ClaimLostError) Error() string { return ErrVIPClaimLost.Error() }

func (e *ClaimLostError) Unwrap() error { return ErrVIPClaimLost }

func vipPrefix(root string) string { return "/weft-vip" + strings.TrimPrefix(root, "/weft") }

func (s *Store) vipPrefix() string { return vipPrefix(s.root) }

// VIPStore is the connection a host's VIP election uses. It is its own etcd
// client, kept on the members that answer: every vipProbeInterval each
// member is asked a local read, and the client's endpoints are set to those
// that answered. A member cut off from this host is dropped within about
// half a second, instead of holding renewals until TCP gives up, which a
// holder renewing every 100 ms cannot afford.
type VIPStore struct {
	client   *clientv3.Client
	root     string
	cancel   context.CancelFunc
	watchSeq atomic.Uint64 // numbers the watches' own streams (watchLive)
}

const (
	vipProbeInterval = 200 * time.Millisecond
	vipProbeTimeout  = 300 * time.Millisecond
)

// ConnectVIP connects the VIP election of one host to the cluster's etcd
// members at endpoints. It does not wait for them: operations fail until
// one answers.
func ConnectVIP(ctx context.Context, endpoints []string, creds *tls.Config, cluster string) (*VIPStore, error) {
	if err := checkEndpoints(endpoints, creds, cluster); err != nil {
		return nil, fmt.Errorf("connecting the VIP election: %w", err)
	}
	newClient := func(eps []string) (*clientv3.Client, error) {
		return clientv3.New(memberConfig(ctx, eps, creds, dialMember))
	}
	client, err := newClient(endpoints)
	if err != nil {
		return nil, fmt.Errorf("connecting the VIP election to etcd at %s: %w", strings.Join(endpoints, ", "), err)
	}
	probes := make([]*clientv3.Client, len(endpoints))
	for i, ep := range endpoints {
		if probes[i], err = newClient([]string{ep}); err != nil {
			client.Close()
			for _, p := range probes[:i] {
				p.Close()
			}
			return nil, fmt.Errorf("connecting to etcd at %s: %w", ep, err)
		}
	}
	hctx, cancel := context.WithCancel(ctx)
	v := &VIPStore{client: client, root: naming.StoreRoot(cluster), cancel: cancel}
	go v.keepEndpoints(hctx, endpoints, probes)
	return v, nil
}

// Close ends the connection; terms made through it are abandoned.
func (v *VIPStore) Close() error {
	v.cancel()
	return v.client.Close()
}

func (v *VIPStore) closed() bool { return v.client.Ctx().Err() != nil }

func (v *VIPStore) vipKey(name string) string { return vipPrefix(v.root) + name }

func (v *VIPStore) keepEndpoints(ctx context.Context, endpoints []string, probes []*clientv3.Client) {
	defer func() {
		for _, p := range probes {
			p.Close()
		}
	}()
	current := slices.Clone(endpoints)
	tick := time.NewTicker(vipProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ok := make([]bool, len(probes))
		var wg sync.WaitGroup
		for i, p := range probes {
			wg.Go(func() {
				pctx, cancel := context.WithTimeout(ctx, vipProbeTimeout)
				defer cancel()
				_, err := p.Get(pctx, v.root, clientv3.WithSerializable(), clientv3.WithCountOnly())
				ok[i] = err == nil
			})
		}
		wg.Wait()
		var live []string
		for i, ep := range endpoints {
			if ok[i] {
				live = append(live, ep)
			}
		}
		if len(live) > 0 && !slices.Equal(live, current) {
			v.client.SetEndpoints(live...)
			current = live
		}
	}
}

// VIPState is a VIP's key as read at one revision: Record is nil when the
// key does not exist. Rev is the key's modification revision (0 when
// absent) and Seen the local time this state was read.
type VIPState struct {
	Record *model.VIPRecord
	Rev    int64
	Seen   time.Time
}

// VIPs reads every VIP's key by name; a record that does not decode is left out.
func (s *Store) VIPs(ctx context.Context) (map[string]VIPState, error) {
	resp, err := s.client.Get(ctx, s.vipPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading VIP holders under %s: %w", s.vipPrefix(), err)
	}
	now := time.Now()
	out := make(map[string]VIPState, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		st, err := decodeVIP(kv, now)
		if err != nil {
			continue // like the VIP watches: one bad record hides no other
		}
		out[strings.TrimPrefix(string(kv.Key), s.vipPrefix())] = st
	}
	return out, nil
}

func decodeVIP(kv *mvccpb.KeyValue, seen time.Time) (VIPState, error) {
	var rec model.VIPRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return VIPState{}, fmt.Errorf("decoding %s: %w", kv.Key, err)
	}
	return VIPState{Record: &rec, Rev: kv.ModRevision, Seen: seen}, nil
}

// VIPWatch follows one VIP's key.
type VIPWatch struct {
	mu      sync.Mutex
	latest  VIPState
	loaded  bool
	changed chan struct{}
}

// Latest is the newest state seen, and whether any was read yet.
func (w *VIPWatch) Latest() (VIPState, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest, w.loaded
}

// Changes receives a value (coalesced) after every new state.
func (w *VIPWatch) Changes() <-chan struct{} { return w.changed }

func (w *VIPWatch) set(st VIPState) {
	w.mu.Lock()
	if !w.loaded || st.Rev != w.latest.Rev {
		w.latest = st
	}
	w.loaded = true
	w.mu.Unlock()
	signal(w.changed)
}

// Observe takes a state read outside the watch (a lost claim's) when it is
// newer than what the watch has shown.
func (w *VIPWatch) Observe(st VIPState) {
	w.mu.Lock()
	newer := !w.loaded || st.Rev > w.latest.Rev
	w.mu.Unlock()
	if newer {
		w.set(st)
	}
}

// WatchVIP follows the VIP's key until ctx ends: a read, then a watch from
// the next revision, again after any break. Seen is the local time each
// revision was first observed, which the fencing rule relies on (a renewal
// is always observed after it was sent).
func (v *VIPStore) WatchVIP(ctx context.Context, name string) *VIPWatch {
	w := &VIPWatch{changed: make(chan struct{}, 1)}
	go func() {
		retry := newBackoff(100*time.Millisecond, time.Second)
		key := v.vipKey(name)
		for ctx.Err() == nil && !v.closed() {
			gctx, cancel := context.WithTimeout(ctx, dialTimeout)
			resp, err := v.client.Get(gctx, key)
			cancel()
			if err != nil {
				if !retry.wait(ctx) {
					return
				}
				continue
			}
			st := VIPState{Seen: time.Now()}
			if len(resp.Kvs) > 0 {
				if st, err = decodeVIP(resp.Kvs[0], st.Seen); err != nil {
					st = VIPState{Rev: resp.Kvs[0].ModRevision, Seen: time.Now()}
				}
			}
			w.set(st)
			retry.reset()
			// A watch that stays silent (its stream sat on a member that
			// froze) is made again at once from a fresh read.
			silent := watchLive(ctx, v.client, &v.watchSeq, key, resp.Header.Revision+1, nil, func(wr clientv3.WatchResponse) bool {
				if wr.Err() != nil || wr.CompactRevision != 0 {
					return false
				}
				for _, ev := range wr.Events {
					now := time.Now()
					if ev.Type == mvccpb.DELETE {
						w.set(VIPState{Seen: now})
						continue
					}
					if st, err := decodeVIP(ev.Kv, now); err == nil {
						w.set(st)
					}
				}
				return true
			})
			if !silent && !retry.wait(ctx) {
				return
			}
		}
	}()
	return w
}

// VIPTerm is one host's term as a VIP's holder: its key, the revision of
// its last write, and the lease the key lives under.
type VIPTerm struct {
	v      *VIPStore
	key    string
	lease  clientv3.LeaseID
	cancel context.CancelFunc

	mu  sync.Mutex
	rev int64
	rec model.VIPRecord
}

// ClaimVIP makes rec the VIP's record if the key is still at revision
// prevRev (0: absent), under a new lease kept alive until the term ends.
// Two candidates that read the same revision cannot both win: the second
// gets a *ClaimLostError (errors.Is ErrVIPClaimLost) with the key as it
// found it.
func (v *VIPStore) ClaimVIP(ctx context.Context, name string, prevRev int64, rec model.VIPRecord) (*VIPTerm, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encoding VIP record %s: %w", name, err)
	}
	grant, err := v.client.Grant(ctx, vipLeaseTTLSeconds)
	if err != nil {
		return nil, fmt.Errorf("claiming VIP %s: granting a lease: %w", name, err)
	}
	key := v.vipKey(name)
	resp, err := v.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", prevRev)).
		Then(clientv3.OpPut(key, string(body), clientv3.WithLease(grant.ID))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		go v.revoke(grant.ID)
		return nil, fmt.Errorf("claiming VIP %s: %w", name, err)
	}
	if !resp.Succeeded {
		go v.revoke(grant.ID)
		lost := &ClaimLostError{Current: VIPState{Seen: time.Now()}}
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
			if st, err := decodeVIP(kvs[0], lost.Current.Seen); err == nil {
				lost.Current = st
			} else {
				lost.Current.Rev = kvs[0].ModRevision
			}
		}
		return nil, lost
	}
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go v.keepLease(kctx, grant.ID)
	return &VIPTerm{v: v, key: key, lease: grant.ID, cancel: cancel, rev: resp.Header.Revision, rec: rec}, nil
}

// keepLease keeps a term's lease alive until ctx ends, each refresh on a
// stream of its own with its own deadline: the client's shared keepalive
// stream could sit on a member that froze, and the lease would expire under
// a live holder.
func (v *VIPStore) keepLease(ctx context.Context, id clientv3.LeaseID) {
	every := time.Duration(vipLeaseTTLSeconds) * time.Second / 6
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		kctx, cancel := context.WithTimeout(ctx, every)
		_, err := v.client.KeepAliveOnce(kctx, id)
		cancel()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return
		}
	}
}

// Record is the record this term last wrote.
func (t *VIPTerm) Record() model.VIPRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rec
}

// Renew writes the term's record again, only if nobody wrote the key since
// the term's last write; the new revision tells candidates the holder is
// alive. ErrVIPLost means the term is over.
func (t *VIPTerm) Renew(ctx context.Context) error {
	return t.Update(ctx, t.Record())
}

// Update writes rec under the same guard as Renew.
func (t *VIPTerm) Update(ctx context.Context, rec model.VIPRecord) error {
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding VIP record: %w", err)
	}
	t.mu.Lock()
	rev := t.rev
	t.mu.Unlock()
	resp, err := t.v.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(t.key), "=", rev)).
		Then(clientv3.OpPut(t.key, string(body), clientv3.WithLease(t.lease))).
		Else(clientv3.OpGet(t.key)).
		Commit()
	if err != nil {
		return fmt.Errorf("renewing %s: %w", t.key, err)
	}
	newRev := resp.Header.Revision
	if !resp.Succeeded {
		// A renewal whose answer was lost (its deadline passed while etcd
		// committed it) moved the key on under this term's own lease: the
		// term is still ours. Anybody else's write has another lease.
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 || clientv3.LeaseID(kvs[0].Lease) != t.lease {
			return ErrVIPLost
		}
		newRev = kvs[0].ModRevision
		if string(kvs[0].Value) != string(body) {
			// Write rec under the adopted revision on the next renewal.
			t.mu.Lock()
			t.rev = newRev
			t.mu.Unlock()
			return t.Update(ctx, rec)
		}
	}
	t.mu.Lock()
	t.rev, t.rec = newRev, rec
	t.mu.Unlock()
	return nil
}

// Release ends the term. When the key is still this term's, it is
// rewritten without a holder and without lease (keeping the last failover
// for `weft status`), so candidates take over at once. The lease is revoked
// either way.
func (t *VIPTerm) Release(ctx context.Context) error {
	defer func() {
		t.cancel()
		t.v.revoke(t.lease)
	}()
	rec := t.Record()
	rec.Holder, rec.HolderAddr = "", netip.Addr{}
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding VIP record: %w", err)
	}
	t.mu.Lock()
	rev := t.rev
	t.mu.Unlock()
	if _, err := t.v.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(t.key), "=", rev)).
		Then(clientv3.OpPut(t.key, string(body))).
		Commit(); err != nil {
		return fmt.Errorf("releasing %s: %w", t.key, err)
	}
	return nil
}

// Abandon ends the term without writing: the key stays until its lease
// expires or a candidate claims it.
func (t *VIPTerm) Abandon() {
	t.cancel()
}

// revoke drops a lease now, best effort, with its own short deadline.
func (v *VIPStore) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	_, _ = v.client.Revoke(ctx, lease)
}

// VIPMemberKey is the name (for ClaimVIP) of host's membership of an
// active-active VIP: every healthy holder keeps its own key, under its own
// lease, renewed like a holder's.
func VIPMemberKey(vipName, host string) string { return vipName + "/members/" + host }

// VIPMembersWatch follows the member keys of one active-active VIP.
type VIPMembersWatch struct {
	mu      sync.Mutex
	members map[string]VIPState // host -> its key
	loaded  bool
	changed chan struct{}
}

// Latest is the newest state of every member key seen (a copy), and
// whether it was read yet.
func (w *VIPMembersWatch) Latest() (map[string]VIPState, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]VIPState, len(w.members))
	for h, st := range w.members {
		out[h] = st
	}
	return out, w.loaded
}

// Changes receives a value (coalesced) after every change.
func (w *VIPMembersWatch) Changes() <-chan struct{} { return w.changed }

// WatchVIPMembers follows the member keys of an active-active VIP until ctx
// ends, with the local time each key's revision was first seen.
func (v *VIPStore) WatchVIPMembers(ctx context.Context, vipName string) *VIPMembersWatch {
	w := &VIPMembersWatch{members: map[string]VIPState{}, changed: make(chan struct{}, 1)}
	prefix := v.vipKey(VIPMemberKey(vipName, ""))
	go func() {
		retry := newBackoff(100*time.Millisecond, time.Second)
		for ctx.Err() == nil && !v.closed() {
			gctx, cancel := context.WithTimeout(ctx, dialTimeout)
			resp, err := v.client.Get(gctx, prefix, clientv3.WithPrefix())
			cancel()
			if err != nil {
				if !retry.wait(ctx) {
					return
				}
				continue
			}
			now := time.Now()
			fresh := map[string]VIPState{}
			w.mu.Lock()
			for _, kv := range resp.Kvs {
				host := strings.TrimPrefix(string(kv.Key), prefix)
				if old, ok := w.members[host]; ok && old.Rev == kv.ModRevision {
					fresh[host] = old
				} else if st, err := decodeVIP(kv, now); err == nil {
					fresh[host] = st
				}
			}
			w.members, w.loaded = fresh, true
			w.mu.Unlock()
			signal(w.changed)
			retry.reset()
			silent := watchLive(ctx, v.client, &v.watchSeq, prefix, resp.Header.Revision+1, nil, func(wr clientv3.WatchResponse) bool {
				if wr.Err() != nil || wr.CompactRevision != 0 {
					return false
				}
				if len(wr.Events) == 0 {
					return true
				}
				now := time.Now()
				w.mu.Lock()
				for _, ev := range wr.Events {
					host := strings.TrimPrefix(string(ev.Kv.Key), prefix)
					if ev.Type == mvccpb.DELETE {
						delete(w.members, host)
					} else if st, err := decodeVIP(ev.Kv, now); err == nil {
						w.members[host] = st
					}
				}
				w.mu.Unlock()
				signal(w.changed)
				return true
			}, clientv3.WithPrefix())
			if !silent && !retry.wait(ctx) {
				return
			}
		}
	}()
	return w
}
