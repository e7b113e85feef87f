package store

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNotLeader is returned by a guarded write (ReplaceAssignments,
// ReplacePlacement, ReplaceDown, PutShift) when its guard no longer holds:
// another agent has become leader since the guard was taken.
var ErrNotLeader = errors.New("not the leader any more: the leadership guard failed")

// Guard is the condition a guarded write applies under. Leadership.Guard
// holds while that term lasts; the zero Guard always holds. Its etcd
// comparisons stay inside this package.
type Guard struct{ cmps []clientv3.Cmp }

// commitGuarded applies ops in one transaction while guard holds; a failed
// guard returns ErrNotLeader and changes nothing. what names the write in
// errors ("3 placement changes").
func (s *Store) commitGuarded(ctx context.Context, guard Guard, ops []clientv3.Op, what string) error {
	resp, err := s.client.Txn(ctx).If(guard.cmps...).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("writing %s: %w", what, ErrNotLeader)
	}
	return nil
}
