package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/runtime"
)

// SupervisorCommand is the hidden weft command that runs RunSupervisor;
// StartAgent runs `<this binary> host-supervise --cluster C --host H
// --state-root R -- <agent argv>`.
const SupervisorCommand = "host-supervise"

// Agent restart delays: 100ms doubling to 1s, so a dead agent is back well
// within 2s; a run of 10s counts as healthy and starts the delays over.
var agentBackoff = runtime.Backoff{First: 100 * time.Millisecond, Max: time.Second, ResetAfter: 10 * time.Second}

// SupervisorConfig is one lab host's supervisor.
type SupervisorConfig struct {
	Cluster, Host string
	StateRoot     string   // absolute
	Argv          []string // the agent's command line, argv[0] an absolute path
	Log           *slog.Logger
}

// RunSupervisor is the lab's stand-in for an init system on a real host
// (there: a systemd unit with Restart=always). It runs in the host's
// namespace and keeps the host's agent running: it starts Argv in its own
// session, in cgroup weft.<cluster>/<host>/agent, with output appended to
// agent.log, records it in agent.pid, and restarts it after every death
// with a short capped backoff, logging the exit status. An agent that
// already runs (recorded in agent.pid) is watched, not doubled. It returns
// when ctx is done, leaving the agent running; `weft down` kills both with
// the rest of the cluster's cgroup.
func RunSupervisor(ctx context.Context, cfg SupervisorConfig) error {
	if err := validName("cluster", cfg.Cluster); err != nil {
		return err
	}
	if err := validName("host", cfg.Host); err != nil {
		return err
	}
	if len(cfg.Argv) == 0 || !filepath.IsAbs(cfg.Argv[0]) || !filepath.IsAbs(cfg.StateRoot) {
		return fmt.Errorf("host supervisor: the agent command %q and state root %q must be absolute paths", cfg.Argv, cfg.StateRoot)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("cluster", cfg.Cluster, "host", cfg.Host)
	dir := naming.HostStateDir(cfg.StateRoot, cfg.Cluster, cfg.Host)
	// Never keep the starter's working directory busy.
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("host supervisor: entering state directory %s: %w", dir, err)
	}
	// Whoever started this may not have placed it yet; its agents must
	// never be forked outside the cluster's cgroup.
	if err := cgroup.Join(naming.CgroupRelPath(cfg.Cluster, cfg.Host, supervisorName), os.Getpid()); err != nil {
		return fmt.Errorf("host supervisor: %w", err)
	}
	delays := agentBackoff
	for {
		var (
			pid    int
			status string
			err    error
		)
		began := time.Now()
		if running, alive := agentPid(dir); alive {
			pid = running
			log.Info("watching the running agent", "pid", pid)
			status, err = awaitForeign(ctx, dir, pid)
		} else {
			pid, status, err = runAgent(ctx, log, cfg, dir)
		}
		if ctx.Err() != nil {
			log.Info("supervisor stopping; the agent keeps running", "pid", pid)
			return nil
		}
		ran := time.Since(began)
		d := delays.Delay(ran)
		if err != nil {
			log.Error("agent failed", "pid", pid, "err", err, "restart_in", d)
		} else {
			log.Warn("agent exited; restarting it", "pid", pid, "status", status, "ran", ran.Round(time.Millisecond), "restart_in", d)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// runAgent starts the agent and waits for it; it returns its pid and exit
// status, or an error when it could not be started.
func runAgent(ctx context.Context, log *slog.Logger, cfg SupervisorConfig, dir string) (int, string, error) {
	logPath := filepath.Join(dir, agentLogFile)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, "", fmt.Errorf("opening agent log %s: %w", logPath, err)
	}
	defer logFile.Close()
	// Not CommandContext: the agent outlives this supervisor.
	cmd := exec.Command(cfg.Argv[0], cfg.Argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, "", fmt.Errorf("starting agent %s: %w", cfg.Argv[0], err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	// The agent starts its containers long after this; joining right after
	// fork puts it in its cgroup before it has any children.
	if err := cgroup.Join(naming.CgroupRelPath(cfg.Cluster, cfg.Host, "agent"), pid); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return pid, "", fmt.Errorf("placing the agent in its cgroup: %w", err)
	}
	if err := recordAgent(dir, pid); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return pid, "", err
	}
	log.Info("started agent", "pid", pid, "log", logPath)
	select {
	case <-exited:
		return pid, cmd.ProcessState.String(), nil
	case <-ctx.Done():
		return pid, "", nil
	}
}

// awaitForeign waits for the exit of a process this supervisor did not
// start (its status went to its own parent).
func awaitForeign(ctx context.Context, dir string, pid int) (string, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return "gone", nil
	}
	if err != nil {
		return "", fmt.Errorf("watching agent %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	if _, alive := agentPid(dir); !alive {
		return "gone", nil // the pid was reused between the check and the open
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for ctx.Err() == nil {
		n, err := unix.Poll(fds, 100)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("watching agent %d: %w", pid, err)
		}
		if n > 0 {
			return "exited (status unknown: started by an earlier supervisor)", nil
		}
	}
	return "", nil
}
