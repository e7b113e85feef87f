package fault

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// MechanismNFQueue and MechanismNetem name how latency was added; the
// journal records which.
const (
	MechanismNFQueue = "nfqueue user-space delay stage"
	MechanismNetem   = "tc netem"
)

// startDelayStages starts one delay stage process per part (`weft
// fault-delay`), in its own session so it survives the runner, ending by
// itself when the fault expires. A part whose stage already runs is left
// alone.
func startDelayStages(ctx context.Context, env Env, r *Record) error {
	for i := range r.Parts {
		p := &r.Parts[i]
		if HelperAlive(*p) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		exe := env.Exe
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return fmt.Errorf("finding the weft binary: %w", err)
			}
		}
		args := []string{"fault-delay", "--netns", p.Netns, "--queue", strconv.Itoa(int(p.Queue)),
			"--delay", r.Delay.String(), "--until", r.Expires.UTC().Format(time.RFC3339Nano)}
		cmd := exec.Command(exe, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		cmd.Dir = "/"
		if env.StateRoot != "" {
			dir := filepath.Join(env.StateRoot, r.Cluster, "faults")
			if err := os.MkdirAll(dir, 0o755); err == nil {
				if f, err := os.OpenFile(filepath.Join(dir, r.ID+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
					cmd.Stdout, cmd.Stderr = f, f
					defer f.Close()
				}
			}
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting the delay stage in %s: %w", p.Netns, err)
		}
		go func() { _ = cmd.Wait() }()
		p.Pid = cmd.Process.Pid
		start, err := procStart(p.Pid)
		if err != nil {
			return fmt.Errorf("the delay stage in %s exited at once (see %s/%s/faults/%s.log): %w", p.Netns, env.StateRoot, r.Cluster, r.ID, err)
		}
		p.PidStart = start
	}
	return nil
}
