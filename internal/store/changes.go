package store

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Changes returns a channel that receives a value whenever anything under
// the cluster's prefix changes after the call. Signals coalesce (the channel
// holds at most one) so a slow reader never blocks the watch; a reader
// re-reads what it needs (Snapshot) after each. When the watch breaks
// (member restart, no leader) it resumes where it stopped; when history was
// compacted meanwhile, it sends one signal for the changes it could not see.
// The channel is closed when ctx ends.
func (s *Store) Changes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	// Learning the current revision before returning means a change made
	// right after Changes returns is never missed. If etcd cannot say, the
	// watch loop finds out later and signals once.
	from, _ := s.nextRevision(ctx)
	go s.watchChanges(ctx, from, out)
	return out
}

func (s *Store) nextRevision(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	resp, err := s.client.Get(ctx, s.root, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision + 1, nil
}

func (s *Store) watchChanges(ctx context.Context, from int64, out chan struct{}) {
	defer close(out)
	retry := newBackoff(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil && !s.closed() {
		if from == 0 {
			rev, err := s.nextRevision(ctx)
			if err != nil {
				if !retry.wait(ctx) {
					return
				}
				continue
			}
			from = rev
			signal(out)
		}
		s.liveWatch(ctx, from, nil, func(resp clientv3.WatchResponse) bool {
			if resp.CompactRevision != 0 {
				from = 0
				return false
			}
			if resp.Err() != nil {
				return false
			}
			if n := len(resp.Events); n > 0 {
				from = resp.Events[n-1].Kv.ModRevision + 1
				signal(out)
				retry.reset()
			} else if resp.IsProgressNotify() {
				from = resp.Header.Revision + 1
			}
			return true
		})
		if from != 0 && !retry.wait(ctx) {
			return
		}
	}
}

func signal(out chan<- struct{}) {
	select {
	case out <- struct{}{}:
	default:
	}
}

// backoff spaces out retries against an etcd that is not answering.
type backoff struct {
	initial, limit, next time.Duration
}

func newBackoff(initial, limit time.Duration) *backoff {
	return &backoff{initial: initial, limit: limit, next: initial}
}

func (b *backoff) reset() { b.next = b.initial }

// wait sleeps for the next interval and reports false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	timer := time.NewTimer(b.next)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		b.next = min(2*b.next, b.limit)
		return true
	}
}
