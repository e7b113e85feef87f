package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// leaderTTLSeconds is how long a dead leader's agent keeps the leadership:
// short, because nothing is placed while nobody leads.
const leaderTTLSeconds = 3

// Leadership is this agent's term as the cluster's leader.
type Leadership struct {
	client   *clientv3.Client
	session  *concurrency.Session
	election *concurrency.Election
	// key and rev identify this term; copied because the Election clears
	// them on resign.
	key string
	rev int64

	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// Lead campaigns for leadership under id (the agent's host name) and blocks
// until this agent is leader or ctx ends. The term ends, and Context is
// cancelled, when ctx ends, when Resign is called, when the session's lease
// is lost (etcd unreachable for about 3s) or when the leader key is deleted.
// The lease is revoked when the term ends, so a successor takes over at once.
func (s *Store) Lead(ctx context.Context, id string) (*Leadership, error) {
	gctx, cancel := callCtx(ctx)
	grant, err := s.client.Grant(gctx, leaderTTLSeconds)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("campaigning for leadership as %s: granting the session lease: %w", id, err)
	}
	// The session's own context is the client's, so it outlives ctx long
	// enough to revoke the lease when the term ends.
	session, err := concurrency.NewSession(s.client, concurrency.WithLease(grant.ID), concurrency.WithTTL(leaderTTLSeconds))
	if err != nil {
		s.revoke(grant.ID)
		return nil, fmt.Errorf("campaigning for leadership as %s: starting the session: %w", id, err)
	}
	election := concurrency.NewElection(session, s.leaderPrefix())
	if err := election.Campaign(ctx, id); err != nil {
		_ = session.Close() // revokes the lease, withdrawing the candidacy
		return nil, fmt.Errorf("campaigning for leadership as %s: %w", id, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	l := &Leadership{
		client:   s.client,
		session:  session,
		election: election,
		key:      election.Key(),
		rev:      election.Rev(),
		ctx:      lctx,
		cancel:   cancel,
	}
	go l.endWhenLost()
	return l, nil
}

// Context is cancelled when the term ends.
func (l *Leadership) Context() context.Context { return l.ctx }

// Guard holds while this term lasts: pass it to ReplacePlacement,
// ReplaceDown or PutShift so a deposed leader's late write fails instead of
// overwriting its successor's.
func (l *Leadership) Guard() Guard {
	return Guard{cmps: []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev)}}
}

// Resign ends the term now, letting another candidate lead.
func (l *Leadership) Resign(ctx context.Context) error {
	var err error
	l.once.Do(func() { err = l.end(ctx) })
	return err
}

func (l *Leadership) end(ctx context.Context) error {
	l.cancel()
	err := l.election.Resign(ctx)
	if closeErr := l.session.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("resigning leadership %s: %w", l.key, err)
	}
	return nil
}

func (l *Leadership) endWhenLost() {
	keyGone := make(chan struct{})
	go l.watchKey(keyGone)
	select {
	case <-l.ctx.Done():
	case <-l.session.Done():
	case <-keyGone:
	}
	l.once.Do(func() {
		if l.client.Ctx().Err() != nil {
			// The Store was closed: behave like a dead process and leave the
			// lease to expire, as Store.Close documents.
			l.cancel()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), leaderTTLSeconds*time.Second)
		defer cancel()
		_ = l.end(ctx) // best effort: a lost lease cannot be revoked and need not be
	})
}

// watchKey closes gone when this term's leader key is deleted or replaced,
// which ends the term even though the session is alive (DeleteAll, an
// operator). It returns quietly when the term ends otherwise.
func (l *Leadership) watchKey(gone chan<- struct{}) {
	next := l.rev + 1
	retry := newBackoff(100*time.Millisecond, time.Second)
	for {
		for resp := range l.client.Watch(l.ctx, l.key, clientv3.WithRev(next)) {
			if resp.Err() != nil {
				break
			}
			for _, ev := range resp.Events {
				if ev.Type == mvccpb.DELETE {
					close(gone)
					return
				}
				next = ev.Kv.ModRevision + 1
			}
		}
		if l.ctx.Err() != nil {
			return
		}
		// The watch failed (history compacted, member gone): look at the key
		// itself before watching again.
		gctx, cancel := callCtx(l.ctx)
		resp, err := l.client.Get(gctx, l.key)
		cancel()
		if err == nil {
			if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != l.rev {
				close(gone)
				return
			}
			next = resp.Header.Revision + 1
			retry.reset()
		} else if !retry.wait(l.ctx) {
			return
		}
	}
}
