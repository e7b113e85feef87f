package store

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// A host is live while its agent's record or its resolver's presence is:
// the agent dying alone keeps it live, both ending makes it down.
func TestLiveHostsFollowsRecordsAndPresence(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	s := tc.connect(t, tc.endpoints(), cluster)
	ctx := testContext(t)
	m := s.Mirror(ctx)
	live := func(want map[string]bool) {
		t.Helper()
		eventually(t, 10*time.Second, "live hosts to be "+fmtSet(want), func() bool {
			snap, err := s.Snapshot(ctx)
			mirrored, ok := m.Snapshot()
			return err == nil && ok && reflect.DeepEqual(snap.LiveHosts(), want) && reflect.DeepEqual(mirrored.LiveHosts(), want)
		})
	}
	agentCtx, agentDies := context.WithCancel(ctx)
	if err := s.RegisterHost(agentCtx, model.HostRecord{Name: "host1"}, testHostTTL); err != nil {
		t.Fatal(err)
	}
	resolverCtx, resolverDies := context.WithCancel(ctx)
	if err := s.RegisterPresence(resolverCtx, Presence{Host: "host1", Pid: 1}, testHostTTL); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterPresence(ctx, Presence{Host: "host2", Pid: 2}, testHostTTL); err != nil {
		t.Fatal(err)
	}
	live(map[string]bool{"host1": true, "host2": true})
	agentDies()
	live(map[string]bool{"host1": true, "host2": true})
	// The registration revokes its lease in its own goroutine once its
	// context ends: wait for that, a moment, not a lease.
	eventually(t, time.Second, "host1's agent record to go with its registration", func() bool {
		snap, err := s.Snapshot(ctx)
		return err == nil && len(snap.Hosts) == 0
	})
	resolverDies()
	live(map[string]bool{"host2": true})
}

func fmtSet(m map[string]bool) string {
	return fmt.Sprint(slices.Sorted(maps.Keys(m)))
}
