package fault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/weft-dev/weft/internal/runtime"
)

// Burning CPU runs `weft fault-burn` in the container's cgroups, in its own
// session, spinning Workers threads until the fault expires; removal kills
// it early.

func applyBurn(ctx context.Context, env Env, r *Record) error {
	if env.Pid == nil {
		return errors.New("no way to find container processes here")
	}
	for i := range r.Parts {
		p := &r.Parts[i]
		if HelperAlive(*p) {
			continue
		}
		pid, err := env.Pid(ctx, p.Container)
		if err != nil {
			return err
		}
		exe := env.Exe
		if exe == "" {
			if exe, err = os.Executable(); err != nil {
				return fmt.Errorf("finding the weft binary: %w", err)
			}
		}
		// A host process put in the container's cgroups: its CPU share and
		// limits are the container's. It is not run inside the container's
		// mount namespace, whose root (an image's) need not hold the weft
		// binary.
		cmd := exec.Command(exe, "fault-burn", "--workers", strconv.Itoa(max(r.Workers, 1)), "--until", r.Expires.UTC().Format(time.RFC3339Nano))
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting the burner in %s: %w", p.Container, err)
		}
		go func() { _ = cmd.Wait() }()
		if err := runtime.MoveToCgroupsOf(cmd.Process.Pid, pid); err != nil {
			_ = cmd.Process.Kill()
			return fmt.Errorf("putting the burner in %s's cgroups: %w", p.Container, err)
		}
		p.Pid = cmd.Process.Pid
		if p.PidStart, err = procStart(p.Pid); err != nil {
			return fmt.Errorf("the burner in %s exited at once: %w", p.Container, err)
		}
	}
	return nil
}

// Burn spins workers goroutines until ctx ends (the burner process).
func Burn(ctx context.Context, workers int) {
	done := make(chan struct{})
	for range max(workers, 1) {
		go func() {
			x := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				for i := 0; i < 100000; i++ {
					x += i
				}
				_ = x
			}
		}()
	}
	<-ctx.Done()
	close(done)
}
