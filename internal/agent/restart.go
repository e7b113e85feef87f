package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/spec"
)

// handleRestart restarts one container of this host, as `weft restart` and
// the page of `weft ui` ask: its process stops as it would for a change of
// definition (SIGTERM, SIGKILL after the service's stop_grace), and the next
// reconcile pass, asked for at once, starts a new one in the same slot (same
// address, same MAC).
func (a *Agent) handleRestart(w http.ResponseWriter, r *http.Request) {
	st, req, ok := storeAndRequest[api.RestartRequest](a, w, r, 1<<16, "restart request")
	if !ok {
		return
	}
	if !isContainerName(req.Container) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("container %q is not a container name: use SERVICE-N as weft ps shows it", req.Container))
		return
	}
	a.mu.Lock()
	run := a.containers[req.Container]
	a.mu.Unlock()
	if run == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("container %s is not running on host %s (it may be waiting for its dependencies, or run elsewhere: see weft ps)", req.Container, a.self.Name))
		return
	}
	grace := spec.DefaultStopGrace
	rctx, rcancel := context.WithTimeout(r.Context(), storeReadTimeout)
	c, err := st.Spec(rctx)
	rcancel()
	if err == nil && c != nil {
		if svc, ok := c.ServiceByName(run.assign.Service); ok && svc.StopGrace.Duration > 0 {
			grace = svc.StopGrace.Duration
		}
	}
	a.log.Info("restarting container on request", "container", req.Container)
	// The run stays in the map while it stops, so a reconcile pass running
	// meanwhile sees it unchanged and leaves it alone; only then it goes,
	// and the pass asked for below starts the new one. The stop finishes
	// even if the caller goes away.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), grace+restartSlack)
	defer cancel()
	a.stopRun(sctx, run, grace)
	a.mu.Lock()
	if a.containers[req.Container] == run {
		delete(a.containers, req.Container)
	}
	a.mu.Unlock()
	a.askReconcile()
	if err := r.Context().Err(); err != nil {
		writeError(w, http.StatusRequestTimeout, errors.New("the request ended before the container stopped; the agent starts it again anyway"))
		return
	}
	writeJSON(w, http.StatusOK, api.RestartResult{Container: req.Container, Host: a.self.Name})
}

// restartSlack is how long a restart's stop may take beyond the grace
// period (SIGKILL, reaping, removing the record).
const restartSlack = 10 * time.Second

// askReconcile asks the reconcile loop for a pass now, without waiting for
// a store change or the periodic resync.
func (a *Agent) askReconcile() {
	select {
	case a.kick <- struct{}{}:
	default: // a pass is already asked for
	}
}
