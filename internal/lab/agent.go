package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
)

// Files of the agent in its host's state directory.
const (
	agentPidFile   = "agent.pid"
	agentStartFile = "agent.starttime" // /proc start time of that pid, against pid reuse
	agentLogFile   = "agent.log"
	agentLockFile  = "agent.lock"
)

// StartAgent starts `exe args...` in the background inside the host's
// namespace, in its own session, with stdin from /dev/null and output
// appended to agent.log, and records its pid in agent.pid. The process
// outlives the caller. When the host's agent already runs, it returns that
// pid and starts nothing.
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

	dir := naming.HostStateDir(l.stateRoot(), cluster, host)
	unlock, err := lockFile(ctx, filepath.Join(dir, agentLockFile))
	if err != nil {
		return 0, err
	}
	defer unlock()
	if pid, alive := agentPid(dir); alive {
		return pid, nil
	}

	// The agent must not keep the caller's working directory busy, and a
	// relative exe must still mean what the caller meant.
	exePath, err := exec.LookPath(exe)
	if err != nil {
		return 0, fmt.Errorf("finding agent executable %q: %w", exe, err)
	}
	if exePath, err = filepath.Abs(exePath); err != nil {
		return 0, fmt.Errorf("resolving agent executable %q: %w", exe, err)
	}
	logPath := filepath.Join(dir, agentLogFile)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("opening agent log %s: %w", logPath, err)
	}
	defer logFile.Close()

	// Not CommandContext: the agent outlives ctx and the caller.
	cmd := exec.Command(exePath, args...)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// The child is forked from a thread inside the host namespace and
	// inherits it.
	if err := nsthread.Do(hostNs, cmd.Start); err != nil {
		return 0, fmt.Errorf("starting agent %s for host %s in namespace %s: %w", exePath, host, nsName, err)
	}
	pid = cmd.Process.Pid
	// Reap it if it exits while this process still runs; when this process
	// exits first, init adopts it.
	go func() { _ = cmd.Wait() }()

	// The agent starts its containers long after this; joining right after
	// fork puts it in the cgroup before it has any children.
	if err := cgroup.Join(naming.CgroupRelPath(cluster, host, "agent"), pid); err != nil {
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("placing agent of host %s in its cgroup: %w", host, err)
	}
	if err := recordAgent(dir, pid); err != nil {
		_ = cmd.Process.Kill()
		return 0, err
	}
	l.log().Info("started agent", "cluster", cluster, "host", host, "pid", pid, "netns", nsName, "log", logPath)
	return pid, nil
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

func agentPid(dir string) (pid int, alive bool) {
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
	if recorded, err := os.ReadFile(filepath.Join(dir, agentStartFile)); err == nil {
		return pid, strings.TrimSpace(string(recorded)) == stat.startTime
	}
	// No start time recorded (pid file written by an older weft): fall back
	// to recognising the agent by its command line.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return pid, false
	}
	return pid, strings.Contains(string(cmdline), "agent")
}

// recordAgent writes the pid file and the process start time, each replaced
// atomically so a reader never sees half a number.
func recordAgent(dir string, pid int) error {
	stat, err := readProcStat(pid)
	if err != nil {
		return fmt.Errorf("reading start time of agent %d: %w", pid, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, agentStartFile), stat.startTime+"\n"); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, agentPidFile), strconv.Itoa(pid)+"\n")
}

func writeFileAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
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
