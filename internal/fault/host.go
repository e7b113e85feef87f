package fault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/weft-dev/weft/internal/lab"
)

// Host faults act through the lab provider, which owns the router legs and
// the hosts' freezer groups: a crash freezes every process of the host and
// sets its leg down; a cut only sets the leg down; killing an agent sends it
// SIGKILL, and removing that fault starts it again as `weft up` would.

func labOf(env Env) *lab.Lab {
	if env.Lab != nil {
		return env.Lab
	}
	return &lab.Lab{StateRoot: env.StateRoot}
}

// hostAction is a lab method acting on one host of a cluster
// ((*lab.Lab).Crash, Restore, Cut, Heal).
type hostAction func(l *lab.Lab, ctx context.Context, cluster, host string) error

// applyHosts applies act to every host of r, stopping at the first error.
func applyHosts(ctx context.Context, env Env, r *Record, act hostAction) error {
	l := labOf(env)
	for _, p := range r.Parts {
		if err := act(l, ctx, r.Cluster, p.Host); err != nil {
			return err
		}
	}
	return nil
}

// undoHosts applies act to every host of r, whatever fails on the way.
func undoHosts(ctx context.Context, env Env, r *Record, act hostAction) error {
	l := labOf(env)
	var errs []error
	for _, p := range r.Parts {
		errs = append(errs, act(l, ctx, r.Cluster, p.Host))
	}
	return errors.Join(errs...)
}

func applyKillAgent(_ context.Context, env Env, r *Record) error {
	for _, p := range r.Parts {
		pid, alive := labOf(env).AgentPid(r.Cluster, p.Host)
		if !alive {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("killing the agent of %s (pid %d): %w", p.Host, pid, err)
		}
	}
	return nil
}

func removeKillAgent(ctx context.Context, env Env, r *Record) error {
	exe := env.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("finding the weft binary: %w", err)
		}
	}
	var errs []error
	for _, p := range r.Parts {
		args := []string{"agent", "--cluster", r.Cluster, "--host", p.Host, "--state-root", env.StateRoot}
		if _, err := labOf(env).StartAgent(ctx, r.Cluster, p.Host, exe, args); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
