package agent

import (
	"context"
	"sort"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// removeStale stops and unwires the containers supervised or recorded here
// that are no longer assigned here, and forgets their records for the
// rest of the pass.
func (a *Agent) removeStale(ctx context.Context, st statusStore, p *pass) {
	for _, name := range a.staleContainers(p.local, p.recorded) {
		grace := stopGrace(p.c, p.snap, name)
		if as, ok := p.snap.Assign[name]; ok && as.Host != a.self.Name {
			// A copy of a container that now runs on another host (moved
			// while this host was down): it holds that instance's address
			// and MAC, so it goes at once, without a grace period.
			grace = 0
		}
		if err := a.removeContainer(ctx, st, name, p.snap, grace); err != nil {
			p.fail("removing %s: %v", name, err)
		}
		delete(p.recorded, name)
	}
}

// stopGrace is how long a container of this host gets between SIGTERM and
// SIGKILL: its service's stop_grace, or the default for a service gone
// from the file.
func stopGrace(c *spec.Cluster, snap store.Snapshot, container string) time.Duration {
	service := ""
	if as, ok := snap.Assign[container]; ok {
		service = as.Service
	} else if st, ok := snap.Status[container]; ok {
		service = st.Service
	}
	if svc, ok := c.ServiceByName(service); ok && svc.StopGrace.Duration > 0 {
		return svc.StopGrace.Duration
	}
	return spec.DefaultStopGrace
}

// staleContainers lists the containers supervised or recorded on this host
// that are not assigned to it.
func (a *Agent) staleContainers(local map[string]model.Assignment, recorded map[string]bool) []string {
	a.mu.Lock()
	var gone []string
	for name := range a.containers {
		if _, ok := local[name]; !ok {
			gone = append(gone, name)
		}
	}
	a.mu.Unlock()
	for name := range recorded {
		if _, ok := local[name]; !ok {
			gone = append(gone, name)
		}
	}
	return dedupe(gone)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// removeContainer stops a container no longer assigned here, removes its
// link and namespace, and withdraws its status (unless it moved and its new
// host already reports it).
func (a *Agent) removeContainer(ctx context.Context, st statusStore, name string, snap store.Snapshot, grace time.Duration) error {
	status := snap.Status
	a.mu.Lock()
	run := a.containers[name]
	delete(a.containers, name)
	delete(a.pulled, name)
	a.mu.Unlock()
	if run != nil {
		a.stopRun(ctx, run, grace)
	}
	if err := a.rt.Stop(ctx, a.cfg.Cluster, a.self.Name, name, grace); err != nil {
		return err
	}
	if err := a.kernel.DetachContainer(name, naming.ContainerNetns(a.cfg.Cluster, a.self.Name, name)); err != nil {
		return err
	}
	if s, ok := status[name]; ok && s.Host == a.self.Name {
		// Only a container gone from the file loses its status; one that
		// moved keeps the key for its new host to write.
		dctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
		defer cancel()
		return st.DeleteStatusUnassigned(dctx, name)
	}
	a.log.Info("container removed", "container", name)
	return nil
}
