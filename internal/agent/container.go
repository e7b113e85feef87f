package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/health"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/runtime"
	"github.com/weft-dev/weft/internal/spec"
)

// containerRun is one supervised container: the runtime's supervisor, the
// health checker of its current process, and the status both produce.
type containerRun struct {
	assign model.Assignment
	hash   string
	image  string // the unpacked image it runs ("" for a host binary), kept from GC
	cancel context.CancelFunc
	done   chan struct{}

	mu           sync.Mutex
	status       model.ContainerStatus
	healthCancel context.CancelFunc
}

func (r *containerRun) snapshot() model.ContainerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// startRun supervises the container in the background. The supervisor's
// context is the agent's own lifetime, not this reconcile pass.
//
// prev is the store's status of the instance an earlier agent ran here (nil
// when there is none): a restarted agent that adopts that very process
// keeps its status instead of reporting it starting, so restarting an agent
// never takes a healthy instance out of DNS or the gateways. Its health
// checks go on, and fail it as usual.
func (a *Agent) startRun(st statusStore, svc spec.Service, as model.Assignment, rc runtime.Config, hash string, base model.ContainerStatus, prev *model.ContainerStatus) *containerRun {
	ctx, cancel := context.WithCancel(context.Background())
	run := &containerRun{assign: as, hash: hash, cancel: cancel, done: make(chan struct{})}
	base.State = model.StateStarting
	base.Health = model.HealthStarting
	base.Message = ""
	base.Updated = time.Now().UTC()
	run.status = base

	report := func() {
		cur := run.snapshot()
		rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer rcancel()
		if err := reportStatus(rctx, st, cur); err != nil {
			a.log.Warn("reporting container status", "container", cur.Container, "err", err)
		}
	}
	if prev != nil {
		run.status = *prev
	} else {
		report()
	}

	onEvent := func(ev runtime.Event) {
		run.mu.Lock()
		if run.healthCancel != nil {
			run.healthCancel()
			run.healthCancel = nil
		}
		run.status.State = ev.State
		run.status.Pid = ev.Pid
		run.status.Restarts = ev.Restarts
		run.status.Updated = time.Now().UTC()
		run.status.Message = ""
		if ev.Err != nil {
			run.status.Message = ev.Err.Error()
		}
		switch {
		case ev.State == model.StateRunning && svc.Health == nil:
			run.status.Health = model.HealthNone
		case ev.State == model.StateRunning:
			run.status.Health = model.HealthStarting
			if ev.Adopted && prev != nil && ev.Pid == prev.Pid && prev.Health == model.HealthHealthy {
				run.status.Health = model.HealthHealthy
			}
			hctx, hcancel := context.WithCancel(ctx)
			run.healthCancel = hcancel
			pid := ev.Pid
			execFn := func(ctx context.Context, argv []string) error {
				return runtime.ExecCommand(ctx, pid, argv).Run()
			}
			go health.Run(hctx, *svc.Health, as.IP, svc.Port, execFn, ev.At, func(h string, lastErr error) {
				run.mu.Lock()
				if hctx.Err() != nil {
					run.mu.Unlock()
					return
				}
				run.status.Health = h
				run.status.Message = ""
				if h != model.HealthHealthy && lastErr != nil {
					run.status.Message = lastErr.Error()
				}
				run.status.Updated = time.Now().UTC()
				run.mu.Unlock()
				report()
			})
		default:
			run.status.Health = model.HealthUnhealthy
			if run.status.Message == "" && ev.ExitCode >= 0 {
				run.status.Message = exitMessage(ev.ExitCode)
			}
		}
		run.mu.Unlock()
		report()
	}
	go func() {
		defer close(run.done)
		if err := a.rt.Supervise(ctx, rc, onEvent); err != nil && ctx.Err() == nil {
			a.log.Warn("supervising container", "container", as.Container, "err", err)
			run.mu.Lock()
			run.status.State = model.StateFailed
			run.status.Message = err.Error()
			run.status.Updated = time.Now().UTC()
			run.mu.Unlock()
			report()
		}
	}()
	return run
}

func exitMessage(code int) string {
	return fmt.Sprintf("process exited with status %d", code)
}

// stopRun stops the supervisor and the process for good: SIGTERM, then
// SIGKILL after grace (the service's stop_grace).
func (a *Agent) stopRun(ctx context.Context, run *containerRun, grace time.Duration) {
	run.cancel()
	<-run.done
	run.mu.Lock()
	if run.healthCancel != nil {
		run.healthCancel()
	}
	run.mu.Unlock()
	if err := a.rt.Stop(ctx, a.cfg.Cluster, a.self.Name, run.assign.Container, grace); err != nil {
		a.log.Warn("stopping container", "container", run.assign.Container, "err", err)
	}
}

// stopSupervisors ends supervision when the agent exits, leaving every
// container process running for the next agent to adopt.
func (a *Agent) stopSupervisors() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, run := range a.containers {
		run.cancel()
		run.mu.Lock()
		if run.healthCancel != nil {
			run.healthCancel()
		}
		run.mu.Unlock()
	}
}
