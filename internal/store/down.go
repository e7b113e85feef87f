package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// Keys of rescheduling, relative to the cluster root:
//
//	down/<host>   since when host has been silent: its last renewal (RFC 3339,
//	              UTC, nanoseconds); written and cleared by the leader only,
//	              under its guard, so a new leader continues the same clock.

// downCallTimeout bounds each call of this file whose context has no
// deadline of its own, so a member that stopped answering cannot hang the
// caller.
const downCallTimeout = 5 * time.Second

func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, downCallTimeout)
}

func (s *Store) downPrefix() string         { return s.root + "down/" }
func (s *Store) downKey(host string) string { return s.downPrefix() + host }

// LeaderView is what the leader places from, read at one etcd revision.
type LeaderView struct {
	Spec      *spec.Cluster // nil before the first apply
	Hosts     map[string]model.HostRecord
	Alive     map[string]Presence
	Assign    map[string]model.Assignment
	DownSince map[string]time.Time
	Status    map[string]model.ContainerStatus
	Rollouts  map[string]model.Rollout
	Revision  int64
	Bad       []BadValue // values left out because they do not decode (see Snapshot.Bad)
}

// LiveHosts is the set of hosts that are up, by the same rule as
// Snapshot.LiveHosts: a live agent record or a live presence. A host whose
// agent alone is dead keeps its containers running; it is not down.
func (v LeaderView) LiveHosts() map[string]bool {
	return Snapshot{Hosts: v.Hosts, Alive: v.Alive}.LiveHosts()
}

// LeaderView reads the spec, the live hosts, the assignments and the
// down-since times in one transaction.
func (s *Store) LeaderView(ctx context.Context) (LeaderView, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	resp, err := s.client.Txn(ctx).Then(
		clientv3.OpGet(s.specKey()),
		clientv3.OpGet(s.hostsPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.assignPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.downPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.alivePrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.statusPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(s.rolloutPrefix(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return LeaderView{}, fmt.Errorf("reading the leader's view of %s: %w", s.root, err)
	}
	v := LeaderView{Revision: resp.Header.Revision, DownSince: map[string]time.Time{}}
	v.Spec = decodeSpecKV(resp.Responses[0].GetResponseRange().Kvs, &v.Bad)
	v.Hosts = decodeAll[model.HostRecord](resp.Responses[1].GetResponseRange().Kvs, s.hostsPrefix(), &v.Bad)
	v.Assign = decodeAll[model.Assignment](resp.Responses[2].GetResponseRange().Kvs, s.assignPrefix(), &v.Bad)
	for _, kv := range resp.Responses[3].GetResponseRange().Kvs {
		since, err := time.Parse(time.RFC3339Nano, string(kv.Value))
		if err != nil {
			addBad(&v.Bad, string(kv.Key), err)
			continue
		}
		v.DownSince[strings.TrimPrefix(string(kv.Key), s.downPrefix())] = since
	}
	v.Alive = decodeAll[Presence](resp.Responses[4].GetResponseRange().Kvs, s.alivePrefix(), &v.Bad)
	v.Status = decodeAll[model.ContainerStatus](resp.Responses[5].GetResponseRange().Kvs, s.statusPrefix(), &v.Bad)
	v.Rollouts = decodeAll[model.Rollout](resp.Responses[6].GetResponseRange().Kvs, s.rolloutPrefix(), &v.Bad)
	v.Bad = s.named(v.Bad)
	return v, nil
}

// DownSince returns since when each down host has been silent.
func (s *Store) DownSince(ctx context.Context) (map[string]time.Time, error) {
	v, err := s.LeaderView(ctx)
	if err != nil {
		return nil, err
	}
	return v.DownSince, nil
}

// ReplaceDown turns the down-since times prev (what the caller read) into
// next in one transaction that applies only while guard holds (the
// leadership's Guard); a failed guard returns ErrNotLeader.
func (s *Store) ReplaceDown(ctx context.Context, prev, next map[string]time.Time, guard Guard) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	var ops []clientv3.Op
	for _, host := range slices.Sorted(maps.Keys(next)) {
		if old, ok := prev[host]; ok && old.Equal(next[host]) {
			continue
		}
		ops = append(ops, clientv3.OpPut(s.downKey(host), next[host].UTC().Format(time.RFC3339Nano)))
	}
	for _, host := range slices.Sorted(maps.Keys(prev)) {
		if _, ok := next[host]; !ok {
			ops = append(ops, clientv3.OpDelete(s.downKey(host)))
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return s.commitGuarded(ctx, guard, ops, fmt.Sprintf("%d down-since changes", len(ops)))
}

// ErrNotAssignedHere is returned by PutStatusAssigned when the container is
// no longer assigned to the host the status comes from.
var ErrNotAssignedHere = errors.New("the container is not assigned to this host any more")

// PutStatusAssigned writes a container's status only while the container is
// assigned to st.Host: a stale copy on a host that came back after its
// container moved can never overwrite the new instance's status. The check
// and the write are one transaction (on the assignment's revision).
func (s *Store) PutStatusAssigned(ctx context.Context, st model.ContainerStatus) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	s.statusMu.Lock()
	delete(s.statusWritten, st.Container) // PutStatus's cache must not trust this write
	s.statusMu.Unlock()
	key := s.assignKey(st.Container)
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reading assignment of %s: %w", st.Container, err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("reporting %s from %s: %w", st.Container, st.Host, ErrNotAssignedHere)
	}
	var as model.Assignment
	if err := json.Unmarshal(resp.Kvs[0].Value, &as); err != nil {
		return fmt.Errorf("decoding assignment of %s: %w", st.Container, err)
	}
	if as.Host != st.Host {
		return fmt.Errorf("reporting %s from %s (now on %s): %w", st.Container, st.Host, as.Host, ErrNotAssignedHere)
	}
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding status of %s: %w", st.Container, err)
	}
	txn, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
		Then(clientv3.OpPut(s.statusKey(st.Container), string(body))).
		Commit()
	if err != nil {
		return fmt.Errorf("writing status of %s: %w", st.Container, err)
	}
	if !txn.Succeeded {
		return fmt.Errorf("reporting %s from %s: the assignment changed meanwhile: %w", st.Container, st.Host, ErrNotAssignedHere)
	}
	return nil
}

// DeleteStatusUnassigned removes a container's status only while the
// container has no assignment at all (it was removed from the file); the
// status of a container that moved belongs to its new host.
func (s *Store) DeleteStatusUnassigned(ctx context.Context, container string) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	s.statusMu.Lock()
	delete(s.statusWritten, container)
	s.statusMu.Unlock()
	_, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(s.assignKey(container)), "=", 0)).
		Then(clientv3.OpDelete(s.statusKey(container))).
		Commit()
	if err != nil {
		return fmt.Errorf("deleting status of %s: %w", container, err)
	}
	return nil
}
