package agent

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/store"
)

// statusStore is the store as reconciling writes to it: the statuses of
// this host's containers. *store.Store is the real one; the tests keep
// them in memory.
type statusStore interface {
	// PutStatusAssigned writes a container's status while the container is
	// assigned to the status's host; otherwise it fails with
	// store.ErrNotAssignedHere.
	PutStatusAssigned(ctx context.Context, st model.ContainerStatus) error
	// DeleteStatusUnassigned deletes a container's status unless the
	// container is assigned (to any host).
	DeleteStatusUnassigned(ctx context.Context, container string) error
}

// statusWriteTimeout bounds one status report, so a store member that
// stopped answering delays a reconcile pass by this much at most.
const statusWriteTimeout = 3 * time.Second

// reportStatus writes a status of this host's container, guarded by its
// assignment: when the container has moved to another host meanwhile, the
// write is skipped, never overwriting the new instance's status.
func reportStatus(ctx context.Context, st statusStore, cur model.ContainerStatus) error {
	ctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
	defer cancel()
	err := st.PutStatusAssigned(ctx, cur)
	if errors.Is(err, store.ErrNotAssignedHere) {
		return nil
	}
	return err
}

// reportStatuses re-reports, in the order of their names, the statuses of
// supervised containers that the store lost or another writer overwrote.
func (a *Agent) reportStatuses(ctx context.Context, st statusStore, p *pass) {
	a.mu.Lock()
	runs := make([]*containerRun, 0, len(a.containers))
	for _, name := range slices.Sorted(maps.Keys(a.containers)) {
		runs = append(runs, a.containers[name])
	}
	a.mu.Unlock()
	for _, r := range runs {
		cur := r.snapshot()
		if have, ok := p.snap.Status[cur.Container]; !ok || !sameStatus(have, cur) {
			if err := reportStatus(ctx, st, cur); err != nil {
				p.fail("reporting %s: %v", cur.Container, err)
			}
		}
	}
}

func sameStatus(x, y model.ContainerStatus) bool {
	x.Updated, y.Updated = time.Time{}, time.Time{}
	return x == y
}
