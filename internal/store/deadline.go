package store

import (
	"context"
	"time"
)

// callTimeout bounds every store call whose caller set no deadline of its
// own: with quorum lost or a member cut off, etcd calls would otherwise wait
// forever, and the goroutine with them.
const callTimeout = 3 * time.Second

// callCtx returns ctx with a deadline of callTimeout unless ctx already has
// one.
func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, callTimeout)
}
