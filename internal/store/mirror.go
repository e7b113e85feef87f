package store

import (
	"context"
	"encoding/json"
	"fmt"
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
type Mirror struct {
	s       *Store
	changed chan struct{}

	mu     sync.RWMutex
	loaded bool
	snap   Snapshot
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
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.loaded {
		return Snapshot{}, false
	}
	return Snapshot{
		Spec:     m.snap.Spec,
		Hosts:    maps.Clone(m.snap.Hosts),
		Assign:   maps.Clone(m.snap.Assign),
		Status:   maps.Clone(m.snap.Status),
		Revision: m.snap.Revision,
	}, true
}

func (m *Mirror) run(ctx context.Context) {
	retry := newBackoff(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil && !m.s.closed() {
		snap, err := m.s.Snapshot(ctx)
		if err != nil {
			if !retry.wait(ctx) {
				return
			}
			continue
		}
		m.mu.Lock()
		m.snap, m.loaded = snap, true
		m.mu.Unlock()
		signal(m.changed)
		m.follow(ctx, snap.Revision+1)
		if !retry.wait(ctx) {
			return
		}
	}
}

// follow applies watch events from revision from on until the watch breaks;
// the caller then reloads everything.
func (m *Mirror) follow(ctx context.Context, from int64) {
	watch := m.s.client.Watch(clientv3.WithRequireLeader(ctx), m.s.root,
		clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithProgressNotify())
	for resp := range watch {
		if resp.CompactRevision != 0 || resp.Err() != nil {
			return
		}
		if len(resp.Events) == 0 {
			continue
		}
		m.mu.Lock()
		for _, ev := range resp.Events {
			if err := m.apply(ev); err != nil {
				m.mu.Unlock()
				return
			}
			m.snap.Revision = ev.Kv.ModRevision
		}
		m.mu.Unlock()
		signal(m.changed)
	}
}

// apply changes one mirrored entry; the caller holds m.mu.
func (m *Mirror) apply(ev *clientv3.Event) error {
	key := string(ev.Kv.Key)
	del := ev.Type == mvccpb.DELETE
	switch {
	case key == m.s.specKey():
		if del {
			m.snap.Spec = nil
			return nil
		}
		c, err := decodeSpec(ev.Kv.Value)
		if err != nil {
			return err
		}
		m.snap.Spec = c
	case strings.HasPrefix(key, m.s.hostsPrefix()):
		return applyEntry(m.snap.Hosts, strings.TrimPrefix(key, m.s.hostsPrefix()), ev, del)
	case strings.HasPrefix(key, m.s.assignPrefix()):
		return applyEntry(m.snap.Assign, strings.TrimPrefix(key, m.s.assignPrefix()), ev, del)
	case strings.HasPrefix(key, m.s.statusPrefix()):
		return applyEntry(m.snap.Status, strings.TrimPrefix(key, m.s.statusPrefix()), ev, del)
	}
	return nil
}

func applyEntry[T model.HostRecord | model.Assignment | model.ContainerStatus](into map[string]T, name string, ev *clientv3.Event, del bool) error {
	if del {
		delete(into, name)
		return nil
	}
	var v T
	if err := json.Unmarshal(ev.Kv.Value, &v); err != nil {
		return fmt.Errorf("decoding %s: %w", ev.Kv.Key, err)
	}
	into[name] = v
	return nil
}
