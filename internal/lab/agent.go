package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/runtime"
)

// Files of a lab host's agent and supervisor in the host's state directory.
const (
	agentPidFile  = "agent.pid" // a runtime.PidFile, written by the supervisor
	agentLogFile  = "agent.log"
	agentLockFile = "agent.lock"
	// supervisorName names supervisor.pid and supervisor.log (runtime.EnsureDaemon).
	supervisorName = "supervisor"
	// legacyAgentStartFile is where a weft before the supervisor kept the
	// agent's start time, beside a bare pid in agent.pid.
	legacyAgentStartFile = "agent.starttime"
)

// agentStartTimeout bounds how long StartAgent waits for the supervisor to
// record the agent it starts.
const agentStartTimeout = 10 * time.Second

// StartAgent makes sure the host's agent runs under its supervisor and
// returns the agent's pid. The supervisor is `<this binary> host-supervise`
// (see RunSupervisor; the running binary must implement that command),
// started in the background inside the host's namespace, in its own session
// and cgroup; it starts `exe args...` and restarts it whenever it dies.
// Both outlive the caller. When they already run, nothing is started; when
// only the agent runs (its supervisor was killed, or it was started by a
// weft without supervisors), a new supervisor watches that agent instead
// of starting a second one.
func (l *Lab) StartAgent(ctx context.Context, cluster, host string, exe string, args []string) (pid int, err error) {
	if err := validName("cluster", cluster); err != nil {
		return 0, err
	}
	if err := validName("host", host); err != nil {
		return 0, err
	}
	nsName := naming.HostNetns(cluster, host)
	mounted, err := isNetnsMount(netnsPath(nsName))
	if err != nil {
		return 0, err
	}
	if !mounted {
		return 0, fmt.Errorf("host %s of cluster %s has no namespace %s: build the lab first (weft up)", host, cluster, nsName)
	}
	hostNs, err := netns.GetFromPath(netnsPath(nsName))
	if err != nil {
		return 0, fmt.Errorf("opening namespace %s: %w", nsName, err)
	}
	defer hostNs.Close()
	// The supervisor is forked from a thread inside the host namespace and
	// inherits it; so does every agent it starts.
	inHost := func(fork func() error) error {
		if err := nsthread.Do(hostNs, fork); err != nil {
			return fmt.Errorf("in namespace %s: %w", nsName, err)
		}
		return nil
	}
	pid, _, err = startSupervised(ctx, l.log(), l.stateRoot(), cluster, host, exe, args, inHost)
	return pid, err
}

// StartAgentHere is StartAgent for a host that is this machine (a server
// of provider ssh, where `weft host-start` runs it): the supervisor is
// started in the caller's own network namespace, with the same files
// under stateRoot.
func StartAgentHere(ctx context.Context, log *slog.Logger, stateRoot, cluster, host, exe string, args []string) (pid int, started bool, err error) {
	if err := validName("cluster", cluster); err != nil {
		return 0, false, err
	}
	if err := validName("host", host); err != nil {
		return 0, false, err
	}
	return startSupervised(ctx, log, stateRoot, cluster, host, exe, args, func(fork func() error) error { return fork() })
}

// startSupervised makes sure the host's supervisor runs (forked through
// enter, which puts the fork in the host's network namespace) and returns
// the pid of the agent it keeps, and whether it started the supervisor.
func startSupervised(ctx context.Context, log *slog.Logger, stateRoot, cluster, host, exe string, args []string, enter func(fork func() error) error) (int, bool, error) {
	stateRoot, err := filepath.Abs(stateRoot)
	if err != nil {
		return 0, false, fmt.Errorf("resolving state root %s: %w", stateRoot, err)
	}
	dir := naming.HostStateDir(stateRoot, cluster, host)
	unlock, err := lockFile(ctx, filepath.Join(dir, agentLockFile))
	if err != nil {
		return 0, false, err
	}
	defer unlock()

	// The supervisor must not keep the caller's working directory busy, and
	// a relative exe must still mean what the caller meant.
	exePath, err := exec.LookPath(exe)
	if err != nil {
		return 0, false, fmt.Errorf("finding agent executable %q: %w", exe, err)
	}
	if exePath, err = filepath.Abs(exePath); err != nil {
		return 0, false, fmt.Errorf("resolving agent executable %q: %w", exe, err)
	}
	self, err := os.Executable()
	if err != nil {
		return 0, false, fmt.Errorf("finding this binary to run the host supervisor: %w", err)
	}
	argv := append([]string{self, SupervisorCommand, "--cluster", cluster, "--host", host, "--state-root", stateRoot, "--", exePath}, args...)
	var supPid int
	var started bool
	err = enter(func() error {
		var err error
		supPid, started, err = runtime.EnsureDaemon(dir, naming.CgroupRelPath(cluster, host, supervisorName), supervisorName, argv)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("starting the supervisor of host %s: %w", host, err)
	}
	if started {
		log.Info("started host supervisor", "cluster", cluster, "host", host, "pid", supPid,
			"log", filepath.Join(dir, supervisorName+".log"))
	}

	// The supervisor records the agent right after starting it.
	deadline := time.NewTimer(agentStartTimeout)
	defer deadline.Stop()
	for {
		if pid, alive := agentPid(dir); alive {
			return pid, started, nil
		}
		if _, alive := runtime.PidFile(filepath.Join(dir, supervisorName+".pid")).Read(); !alive {
			return 0, false, fmt.Errorf("the supervisor of host %s exited before starting the agent; see %s",
				host, filepath.Join(dir, supervisorName+".log"))
		}
		select {
		case <-ctx.Done():
			return 0, false, fmt.Errorf("waiting for the agent of host %s: %w", host, ctx.Err())
		case <-deadline.C:
			return 0, false, fmt.Errorf("the supervisor of host %s did not start the agent within %s; see %s",
				host, agentStartTimeout, filepath.Join(dir, supervisorName+".log"))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// AgentPid returns the pid recorded for the host's agent and whether that
// process still runs (not a zombie, and the same process that was started,
// not a later one that reused the pid).
func (l *Lab) AgentPid(cluster, host string) (pid int, alive bool) {
	if validName("cluster", cluster) != nil || validName("host", host) != nil {
		return 0, false
	}
	return agentPid(naming.HostStateDir(l.stateRoot(), cluster, host))
}

// SupervisorPid returns the pid of the host's supervisor and whether it runs.
func (l *Lab) SupervisorPid(cluster, host string) (pid int, alive bool) {
	if validName("cluster", cluster) != nil || validName("host", host) != nil {
		return 0, false
	}
	return runtime.PidFile(filepath.Join(naming.HostStateDir(l.stateRoot(), cluster, host), supervisorName+".pid")).Read()
}

// agentPid reads agent.pid, also in the form of a weft before supervisors
// (a bare pid, its start time in agent.starttime), so that a running agent
// of such a weft is watched rather than doubled.
func agentPid(dir string) (pid int, alive bool) {
	pidFile := runtime.PidFile(filepath.Join(dir, agentPidFile))
	if pid, alive = pidFile.Read(); alive {
		return pid, true
	}
	recorded, err := os.ReadFile(filepath.Join(dir, legacyAgentStartFile))
	if err != nil {
		return pid, false
	}
	raw, err := os.ReadFile(filepath.Join(dir, agentPidFile))
	if err != nil {
		return 0, false
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	stat, err := readProcStat(pid)
	if err != nil || stat.state == "Z" || stat.state == "X" {
		return pid, false
	}
	return pid, strings.TrimSpace(string(recorded)) == stat.startTime
}

// recordAgent records the agent's pid and drops the legacy start-time file.
func recordAgent(dir string, pid int) error {
	if err := runtime.PidFile(filepath.Join(dir, agentPidFile)).Write(pid); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, legacyAgentStartFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", legacyAgentStartFile, err)
	}
	return nil
}

type procStat struct {
	state     string
	startTime string // clock ticks since boot, kept as text: only compared
}

// readProcStat parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after its last ')'.
func readProcStat(pid int) (procStat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(string(raw))
}

func parseProcStat(raw string) (procStat, error) {
	end := strings.LastIndexByte(raw, ')')
	if end < 0 {
		return procStat{}, errors.New("malformed /proc stat: no command name")
	}
	// fields[0] is field 3 (state) of proc(5).
	fields := strings.Fields(raw[end+1:])
	if len(fields) < 20 {
		return procStat{}, errors.New("malformed /proc stat: too few fields")
	}
	return procStat{state: fields[0], startTime: fields[19]}, nil
}
