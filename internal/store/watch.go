package store

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// A watch proves it is alive by answering progress requests; one that stays
// silent longer than watchSilence is given up and made again, which also
// picks another connection. Without this, a watch whose stream sits on a
// member cut off without a reset would wait for the member's keepalive to
// time out (over ten seconds) while the cluster changes under it.
const (
	progressEvery = 300 * time.Millisecond
	watchSilence  = time.Second
)

// liveWatch watches every key under the cluster's root from revision from
// on (see watchLive).
func (s *Store) liveWatch(ctx context.Context, from int64, heard func(time.Time), handle func(clientv3.WatchResponse) bool) (silent bool) {
	return watchLive(ctx, s.client, &s.watchSeq, s.root, from, heard, handle, clientv3.WithPrefix())
}

// watchLive watches key (with opts, e.g. a prefix) from revision from on,
// on a gRPC stream of its own, and calls handle with every response until
// handle returns false, the watch breaks, it stays silent for watchSilence or
// ctx ends. heard, if not nil, is called whenever the watch has shown that it
// is current (an event or a progress notification). It reports whether it
// gave up because the watch went silent: the caller may then watch again
// from where it was, as nothing was missed. seq numbers the streams of one
// client.
func watchLive(ctx context.Context, client *clientv3.Client, seq *atomic.Uint64, key string, from int64,
	heard func(time.Time), handle func(clientv3.WatchResponse) bool, opts ...clientv3.OpOption) (silent bool) {
	// The client shares one stream between all watches whose contexts carry
	// the same metadata; a key of its own lets this watch drop a dead stream
	// instead of rejoining it.
	wctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(
		clientv3.WithRequireLeader(ctx), "weft-watch", strconv.FormatUint(seq.Add(1), 10)))
	defer cancel()
	opts = append(opts, clientv3.WithRev(from), clientv3.WithProgressNotify())
	watch := client.Watch(wctx, key, opts...)
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return false
		case resp, ok := <-watch:
			if !ok {
				return false
			}
			last = time.Now()
			if resp.Err() == nil && resp.CompactRevision == 0 && heard != nil {
				heard(last)
			}
			if !handle(resp) {
				return false
			}
		case now := <-tick.C:
			if now.Sub(last) > watchSilence {
				return true
			}
			pctx, pcancel := context.WithTimeout(wctx, progressEvery)
			_ = client.RequestProgress(pctx) // an unanswered request shows as silence
			pcancel()
		}
	}
}
