package store

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// callTimeout bounds every store call whose caller set no deadline of its
// own: with quorum lost or a member cut off, etcd calls would otherwise wait
// forever, and the goroutine with them.
const callTimeout = 3 * time.Second

// callCtx returns ctx with a deadline of callTimeout unless ctx already has
// one, marked to require a leader: a member that has none (its host cut
// off, quorum lost) refuses the call at once instead of holding it until the
// deadline, and the client tries the next member.
func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = clientv3.WithRequireLeader(ctx)
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, callTimeout)
}
