package fault

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// applyKill sends SIGKILL to every target container's main process. The
// runtime restarts it by its restart policy; nothing stays to remove.
func applyKill(ctx context.Context, env Env, r *Record) error {
	if env.Pid == nil {
		return errors.New("no way to find container processes here")
	}
	for _, p := range r.Parts {
		pid, err := env.Pid(ctx, p.Container)
		if err != nil {
			return err
		}
		if pid <= 0 {
			return fmt.Errorf("container %s has no running process", p.Container)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("killing container %s (pid %d): %w", p.Container, pid, err)
		}
	}
	return nil
}
