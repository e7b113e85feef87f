package store

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weft-dev/weft/internal/model"
)

// Mirror is a local copy of a cluster's keys kept current by one watch.
// Every agent and every resolver reacts to every change; reading the whole
// store each time made each change cost hosts x keys in etcd. With a mirror a
// change costs one watch event per reader, and reads are from memory.
//
// When the store cannot be read (quorum lost, this host cut off) the mirror
// keeps its last snapshot: it never drops what it has on an error, so names
// keep resolving with their last answers. Synced says how current it is.
type Mirror struct {
	s       *Store
	changed chan struct{}

	mu     sync.RWMutex
	loaded bool
	snap   Snapshot          // snap.Bad is kept in bad while following
	bad    map[string]string // key -> why its value does not decode
	synced time.Time         // when the watch last showed the copy was current
}

// Mirror starts mirroring the cluster's keys until ctx ends. Changes()
// fires after the first full load and after every change applied since.
func (s *Store) Mirror(ctx context.Context) *Mirror {
	m := &Mirror{s: s, changed: make(chan struct{}, 1)}
	go m.run(ctx)
	return m
}

// Changes receives (coalesced) whenever the mirror changed.
func (m *Mirror) Changes() <-chan struct{} { return m.changed }

// Snapshot returns the mirrored state; ok is false until the first load.
// The maps are copies; the values must be treated as read-only.
func (m *Mirror) Snapshot() (snap Snapshot, ok bool) {
	snap, _, ok = m.View()
	return snap, ok
}

// View is Snapshot plus the time the copy was last known to equal the
// store; a copy kept through an outage is as old as time.Since(synced).
func (m *Mirror) View() (snap Snapshot, synced time.Time, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.loaded {
		return Snapshot{}, time.Time{}, false
	}
	var bad []BadValue
	for key, why := range m.bad {
		bad = append(bad, BadValue{Key: key, Err: why})
	}
	bad = m.s.named(bad)
	return Snapshot{
		Spec:     m.snap.Spec,
		Hosts:    maps.Clone(m.snap.Hosts),
		Alive:    maps.Clone(m.snap.Alive),
		Assign:   maps.Clone(m.snap.Assign),
		Status:   maps.Clone(m.snap.Status),
		Rollouts: maps.Clone(m.snap.Rollouts),
		Scales:   maps.Clone(m.snap.Scales),
		Weights:  maps.Clone(m.snap.Weights),
		Shifts:   maps.Clone(m.snap.Shifts),
		Revision: m.snap.Revision,
		Bad:      bad,
	}, m.synced, true
}

// LastView returns the view of the most recently loaded Mirror made from
// this Store, for answers that must not wait for etcd (status while the
// store has no quorum). ok is false when no mirror has loaded yet.
func (s *Store) LastView() (snap Snapshot, synced time.Time, ok bool) {
	m := s.lastView.Load()
	if m == nil {
		return Snapshot{}, time.Time{}, false
	}
	return m.View()
}

// reloadTimeout bounds one full read of the mirror: a read that went to a
// member that stopped answering is abandoned quickly and retried, which the
// client's round-robin sends to another member.
const reloadTimeout = time.Second

func (m *Mirror) run(ctx context.Context) {
	// Retries stay frequent: after an election the copy must catch up at
	// once (resolvers answer from it), and a reload is one small read.
	retry := newBackoff(100*time.Millisecond, 500*time.Millisecond)
	reload := true
	for ctx.Err() == nil && !m.s.closed() {
		if reload {
			lctx, cancel := context.WithTimeout(ctx, reloadTimeout)
			snap, err := m.s.Snapshot(lctx)
			cancel()
			if err != nil {
				// Keep the last snapshot: stale answers beat none.
				if !retry.wait(ctx) {
					return
				}
				continue
			}
			retry.reset()
			m.mu.Lock()
			m.snap, m.loaded, m.synced = snap, true, time.Now()
			m.bad = map[string]string{}
			for _, b := range snap.Bad {
				m.bad[b.Key] = b.Err
			}
			m.mu.Unlock()
			m.s.lastView.Store(m)
			signal(m.changed)
		}
		m.mu.RLock()
		from := m.snap.Revision + 1
		m.mu.RUnlock()
		// A watch that only went silent is made again from where it was;
		// anything else (compaction, an error) reloads everything.
		reload = !m.follow(ctx, from)
		if !retry.wait(ctx) {
			return
		}
	}
}

// follow applies watch events from revision from on until the watch breaks
// or goes silent, and reports whether it went silent.
func (m *Mirror) follow(ctx context.Context, from int64) (silent bool) {
	heard := func(at time.Time) {
		m.mu.Lock()
		m.synced = at
		m.mu.Unlock()
	}
	return m.s.liveWatch(ctx, from, heard, func(resp clientv3.WatchResponse) bool {
		if resp.CompactRevision != 0 || resp.Err() != nil {
			return false
		}
		if len(resp.Events) == 0 {
			if resp.IsProgressNotify() {
				m.mu.Lock()
				m.snap.Revision = max(m.snap.Revision, resp.Header.Revision)
				m.mu.Unlock()
			}
			return true
		}
		m.mu.Lock()
		for _, ev := range resp.Events {
			m.apply(ev)
			m.snap.Revision = ev.Kv.ModRevision
		}
		m.mu.Unlock()
		signal(m.changed)
		return true
	})
}

// apply changes one mirrored entry; the caller holds m.mu. A value that
// does not decode removes the entry and is listed in bad, and the watch goes
// on: re-reading everything would meet the same value again and stall the
// copy for good.
func (m *Mirror) apply(ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	delete(m.bad, key)
	if err := m.applyEntry(key, ev, ev.Type == mvccpb.DELETE); err != nil {
		m.bad[key] = err.Error()
	}
}

func (m *Mirror) applyEntry(key string, ev *clientv3.Event, del bool) error {
	switch {
	case key == m.s.specKey():
		m.snap.Spec = nil
		if del {
			return nil
		}
		c, err := decodeSpec(ev.Kv.Value)
		if err != nil {
			return err
		}
		m.snap.Spec = c
	case strings.HasPrefix(key, m.s.hostsPrefix()):
		return applyEntry(m.snap.Hosts, strings.TrimPrefix(key, m.s.hostsPrefix()), ev, del)
	case strings.HasPrefix(key, m.s.alivePrefix()):
		return applyEntry(m.snap.Alive, strings.TrimPrefix(key, m.s.alivePrefix()), ev, del)
	case strings.HasPrefix(key, m.s.assignPrefix()):
		return applyEntry(m.snap.Assign, strings.TrimPrefix(key, m.s.assignPrefix()), ev, del)
	case strings.HasPrefix(key, m.s.statusPrefix()):
		return applyEntry(m.snap.Status, strings.TrimPrefix(key, m.s.statusPrefix()), ev, del)
	case strings.HasPrefix(key, m.s.rolloutPrefix()):
		return applyEntry(m.snap.Rollouts, strings.TrimPrefix(key, m.s.rolloutPrefix()), ev, del)
	case strings.HasPrefix(key, m.s.scalePrefix()):
		return applyEntry(m.snap.Scales, strings.TrimPrefix(key, m.s.scalePrefix()), ev, del)
	case strings.HasPrefix(key, m.s.weightsPrefix()):
		return applyEntry(m.snap.Weights, routeName(strings.TrimPrefix(key, m.s.weightsPrefix())), ev, del)
	case strings.HasPrefix(key, m.s.shiftPrefix()):
		return applyEntry(m.snap.Shifts, routeName(strings.TrimPrefix(key, m.s.shiftPrefix())), ev, del)
	}
	return nil
}

func applyEntry[T model.HostRecord | model.Assignment | model.ContainerStatus | Presence | model.Rollout | model.Scale | model.RouteWeights | model.Shift](into map[string]T, name string, ev *clientv3.Event, del bool) error {
	delete(into, name)
	if del {
		return nil
	}
	var v T
	if err := json.Unmarshal(ev.Kv.Value, &v); err != nil {
		return err
	}
	into[name] = v
	return nil
}
