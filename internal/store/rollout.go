package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weft-dev/weft/internal/model"
)

// Keys of changes to running services, relative to the cluster's root:
//
//	rollout/<service>  model.Rollout, written by the leader with the assignments
//	scale/<service>    model.Scale, written by whoever applied the change
func (s *Store) rolloutPrefix() string { return s.root + "rollout/" }
func (s *Store) scalePrefix() string   { return s.root + "scale/" }

// Rollouts returns every service's rollout record that decodes.
func (s *Store) Rollouts(ctx context.Context) (map[string]model.Rollout, error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	resp, err := s.client.Get(ctx, s.rolloutPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing rollouts under %s: %w", s.rolloutPrefix(), err)
	}
	// An undecodable record is left out (and reported by the snapshots).
	return decodeAll[model.Rollout](resp.Kvs, s.rolloutPrefix(), nil), nil
}

// ReplacePlacement is ReplaceAssignments that also turns the rollout
// records prev into next, in the same guarded transaction: the leader's
// decisions about instances and about the update driving them land
// together or not at all.
func (s *Store) ReplacePlacement(ctx context.Context, prevAssign, nextAssign map[string]model.Assignment,
	prevRoll, nextRoll map[string]model.Rollout, guard Guard) error {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	ops, err := s.assignmentOps(prevAssign, nextAssign)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(nextRoll)) {
		r := nextRoll[name]
		if old, ok := prevRoll[name]; ok && reflect.DeepEqual(old, r) {
			continue
		}
		body, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encoding rollout of %s: %w", name, err)
		}
		ops = append(ops, clientv3.OpPut(s.rolloutPrefix()+name, string(body)))
	}
	for _, name := range slices.Sorted(maps.Keys(prevRoll)) {
		if _, ok := nextRoll[name]; !ok {
			ops = append(ops, clientv3.OpDelete(s.rolloutPrefix()+name))
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return s.commitGuarded(ctx, guard, ops, fmt.Sprintf("%d placement changes", len(ops)))
}

// PutScales records who changed which services' replicas.
func (s *Store) PutScales(ctx context.Context, scales []model.Scale) error {
	if len(scales) == 0 {
		return nil
	}
	ctx, cancel := callCtx(ctx)
	defer cancel()
	var ops []clientv3.Op
	for _, sc := range scales {
		body, err := json.Marshal(sc)
		if err != nil {
			return fmt.Errorf("encoding scale of %s: %w", sc.Service, err)
		}
		ops = append(ops, clientv3.OpPut(s.scalePrefix()+sc.Service, string(body)))
	}
	if _, err := s.client.Txn(ctx).Then(ops...).Commit(); err != nil {
		return fmt.Errorf("recording %d scale changes: %w", len(ops), err)
	}
	return nil
}
