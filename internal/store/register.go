package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// registration keeps one key alive under a lease of its own with a loop of
// plain calls, each with a deadline:
//
//   - every ttl/6 it renews the lease with one KeepAliveOnce;
//   - when etcd says the lease is gone (expired while the store could not be
//     reached, revoked behind its back, lost with a member's data) it grants
//     a new lease and puts the key again;
//   - every ttl it reads the key back and puts it again when it is missing,
//     under another lease or holds another value (deleted by hand, a stale
//     write).
//
// It replaces clientv3's KeepAlive channel, whose single stream is pinned to
// one member: when that member's network path is cut without a reset, the
// stream hangs silently, the lease expires although the other members
// answer, and the channel-driven re-registration then blocks on a Grant with
// no deadline that may be routed to the same dead connection (see
// Connect for the keepalive pings that evict such a connection).
type registration struct {
	s          *Store
	key, value string
	ttl        time.Duration
	ttlSeconds int64

	lease   clientv3.LeaseID // 0 when no lease is known to be alive
	checked time.Time        // when the key was last read back
}

func newRegistration(s *Store, key, value string, ttl time.Duration) *registration {
	ttlSeconds := int64(max((ttl+time.Second-1)/time.Second, 1))
	return &registration{s: s, key: key, value: value, ttl: time.Duration(ttlSeconds) * time.Second, ttlSeconds: ttlSeconds}
}

// renewEvery is how often the lease is renewed: six tries per ttl, so a few
// calls lost to a dead member or a slow machine never let it expire.
func (r *registration) renewEvery() time.Duration { return r.ttl / 6 }

// callTimeout bounds one renewal: a call picked onto a dead connection is
// abandoned in time for the next one to go elsewhere.
func (r *registration) callTimeout() time.Duration { return r.ttl / 4 }

func (r *registration) run(ctx context.Context) {
	ctx = clientv3.WithRequireLeader(ctx)
	tick := time.NewTicker(r.renewEvery())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if r.lease != 0 && !r.s.closed() {
				r.s.revoke(r.lease)
			}
			return
		case <-tick.C:
		}
		if r.s.closed() {
			return
		}
		_ = r.step(ctx) // a failed step is retried on the next tick
	}
}

// step renews the lease once (retrying once at once, which the client's
// round-robin sends to another member) and registers again when the lease
// or the key is gone.
func (r *registration) step(ctx context.Context) error {
	if r.lease == 0 {
		return r.register(ctx)
	}
	err := r.renew(ctx)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) && ctx.Err() == nil {
		err = r.renew(ctx)
	}
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		r.lease = 0
		return r.register(ctx)
	case err != nil:
		return err
	}
	if time.Since(r.checked) < r.ttl {
		return nil
	}
	return r.verify(ctx)
}

func (r *registration) renew(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, r.callTimeout())
	defer cancel()
	if _, err := r.s.client.KeepAliveOnce(cctx, r.lease); err != nil {
		return fmt.Errorf("renewing lease %x of %s: %w", r.lease, r.key, err)
	}
	return nil
}

// verify reads the key back and puts it again under the live lease when it
// is not what this registration wrote.
func (r *registration) verify(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, r.callTimeout())
	defer cancel()
	resp, err := r.s.client.Get(cctx, r.key)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", r.key, err)
	}
	if len(resp.Kvs) == 1 && clientv3.LeaseID(resp.Kvs[0].Lease) == r.lease && bytes.Equal(resp.Kvs[0].Value, []byte(r.value)) {
		r.checked = time.Now()
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, r.callTimeout())
	defer cancel()
	if _, err := r.s.client.Put(pctx, r.key, r.value, clientv3.WithLease(r.lease)); err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			r.lease = 0
		}
		return fmt.Errorf("writing %s again: %w", r.key, err)
	}
	r.checked = time.Now()
	return nil
}

// writeTimeout bounds one write (Grant, Put), which goes through raft and
// the disk: longer than a renewal, yet short enough that a failed one is
// retried within the same ttl.
func (r *registration) writeTimeout() time.Duration { return r.ttl / 2 }

// register grants a new lease and puts the key under it. Each call has a
// short deadline and a failed one is retried on the next tick, so a store
// that answers has the key back within about one ttl.
func (r *registration) register(ctx context.Context) error {
	ctx = clientv3.WithRequireLeader(ctx)
	gctx, cancel := context.WithTimeout(ctx, r.writeTimeout())
	defer cancel()
	grant, err := r.s.client.Grant(gctx, r.ttlSeconds)
	if err != nil {
		return fmt.Errorf("granting a %ds lease for %s: %w", r.ttlSeconds, r.key, err)
	}
	pctx, cancel := context.WithTimeout(ctx, r.writeTimeout())
	defer cancel()
	if _, err := r.s.client.Put(pctx, r.key, r.value, clientv3.WithLease(grant.ID)); err != nil {
		r.s.revoke(grant.ID)
		return fmt.Errorf("writing %s: %w", r.key, err)
	}
	if old := r.lease; old != 0 && old != grant.ID {
		r.s.revoke(old)
	}
	r.lease, r.checked = grant.ID, time.Now()
	return nil
}
