package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weft-dev/weft/internal/model"
)

// Keys of traffic shifts, relative to the cluster's root:
//
//	shift/<route>    model.Shift, the request of weft shift and its history, driven by the leader
//	weights/<route>  model.RouteWeights, a route's live weights where they differ from the file's
//
// and, outside the root so that their frequent writes wake no watcher of
// the cluster, "/weft/<cluster>.stats/<gateway>/<route>": model.GwSample, each
// gateway's counters of the backend a shift analyses, written by the
// gateway's host agent while a shift runs. <route> is the route prefix,
// path-escaped.
func (s *Store) shiftPrefix() string   { return s.root + "shift/" }
func (s *Store) weightsPrefix() string { return s.root + "weights/" }
func (s *Store) statsPrefix() string   { return strings.TrimSuffix(s.root, "/") + ".stats/" }

func routeKey(route string) string { return url.PathEscape(route) }

// ErrShiftRunning is returned by StartShift when the route has a shift
// that has not ended.
var ErrShiftRunning = errors.New("a shift of this route is running")

// StartShift records a new shift request of its route, unless one that
// has not ended is there.
func (s *Store) StartShift(ctx context.Context, sh model.Shift) error {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	key := s.shiftPrefix() + routeKey(sh.Route)
	body, err := json.Marshal(sh)
	if err != nil {
		return fmt.Errorf("encoding shift of %s: %w", sh.Route, err)
	}
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reading shift of %s: %w", sh.Route, err)
	}
	rev := int64(0)
	if len(resp.Kvs) > 0 {
		var old model.Shift
		if json.Unmarshal(resp.Kvs[0].Value, &old) == nil && !model.ShiftDone(old.State) {
			return fmt.Errorf("%w (%s, %s at step %d): wait for it or see weft shift status", ErrShiftRunning, old.ID, old.State, old.Step+1)
		}
		rev = resp.Kvs[0].ModRevision
	}
	txn, err := s.client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpPut(key, string(body))).Commit()
	if err != nil {
		return fmt.Errorf("writing shift of %s: %w", sh.Route, err)
	}
	if !txn.Succeeded {
		return fmt.Errorf("%w: another weft shift of %s just started", ErrShiftRunning, sh.Route)
	}
	return nil
}

// Shifts returns every route's shift record that decodes, by route.
func (s *Store) Shifts(ctx context.Context) (map[string]model.Shift, error) {
	return getAll[model.Shift](ctx, s, s.shiftPrefix(), "shifts")
}

// RouteWeights returns every live-weights record, by route.
func (s *Store) RouteWeights(ctx context.Context) (map[string]model.RouteWeights, error) {
	return getAll[model.RouteWeights](ctx, s, s.weightsPrefix(), "route weights")
}

// GatewaySamples returns every gateway's last published counters of every
// route backend a shift analyses.
func (s *Store) GatewaySamples(ctx context.Context) ([]model.GwSample, error) {
	all, err := getAll[model.GwSample](ctx, s, s.statsPrefix(), "gateway samples")
	if err != nil {
		return nil, err
	}
	out := make([]model.GwSample, 0, len(all))
	for _, k := range slices.Sorted(maps.Keys(all)) {
		out = append(out, all[k])
	}
	return out, nil
}

func getAll[T any](ctx context.Context, s *Store, prefix, what string) (map[string]T, error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	resp, err := s.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing %s under %s: %w", what, prefix, err)
	}
	return byRoute(decodeAll[T](resp.Kvs, prefix, nil)), nil
}

// byRoute re-keys records stored under their escaped route (routeKey) by
// the route itself.
func byRoute[T any](in map[string]T) map[string]T {
	out := make(map[string]T, len(in))
	for name, v := range in {
		out[routeName(name)] = v
	}
	return out
}

// routeName is the route a key under the weights or shift prefix names.
func routeName(key string) string {
	if un, err := url.PathUnescape(key); err == nil {
		return un
	}
	return key
}

// PutShift writes the leader's decision on a shift and the route's live
// weights that follow from it, together, only while guard holds (the
// writer still leads). weights nil deletes the route's record: the file's
// weights apply again.
func (s *Store) PutShift(ctx context.Context, sh model.Shift, weights *model.RouteWeights, guard Guard) error {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	body, err := json.Marshal(sh)
	if err != nil {
		return fmt.Errorf("encoding shift of %s: %w", sh.Route, err)
	}
	ops := []clientv3.Op{clientv3.OpPut(s.shiftPrefix()+routeKey(sh.Route), string(body))}
	wkey := s.weightsPrefix() + routeKey(sh.Route)
	if weights == nil {
		ops = append(ops, clientv3.OpDelete(wkey))
	} else {
		wb, err := json.Marshal(weights)
		if err != nil {
			return fmt.Errorf("encoding weights of %s: %w", sh.Route, err)
		}
		ops = append(ops, clientv3.OpPut(wkey, string(wb)))
	}
	return s.commitGuarded(ctx, guard, ops, "shift of "+sh.Route)
}

// DeleteRouteWeights removes routes' live-weights records: the file's
// weights apply to them again.
func (s *Store) DeleteRouteWeights(ctx context.Context, routes []string) error {
	if len(routes) == 0 {
		return nil
	}
	ctx, cancel := callCtx(ctx)
	defer cancel()
	var ops []clientv3.Op
	for _, r := range routes {
		ops = append(ops, clientv3.OpDelete(s.weightsPrefix()+routeKey(r)))
	}
	if _, err := s.client.Txn(ctx).Then(ops...).Commit(); err != nil {
		return fmt.Errorf("deleting the live weights of %v: %w", routes, err)
	}
	return nil
}

// PutGatewaySample publishes one gateway's counters.
func (s *Store) PutGatewaySample(ctx context.Context, gs model.GwSample) error {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	body, err := json.Marshal(gs)
	if err != nil {
		return fmt.Errorf("encoding sample of %s: %w", gs.Gateway, err)
	}
	if _, err := s.client.Put(ctx, s.statsPrefix()+gs.Gateway+"/"+routeKey(gs.Route), string(body)); err != nil {
		return fmt.Errorf("publishing the counters of gateway %s: %w", gs.Gateway, err)
	}
	return nil
}

// DeleteGatewaySamples removes every published gateway sample.
func (s *Store) DeleteGatewaySamples(ctx context.Context) error {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	if _, err := s.client.Delete(ctx, s.statsPrefix(), clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("deleting gateway samples under %s: %w", s.statsPrefix(), err)
	}
	return nil
}
