package runtime

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// workloadRunner is container-init's restart loop: it keeps the workload
// running per the restart policy with no agent involved, so a crash while
// the agent is dead is restarted all the same.
type workloadRunner struct {
	cfg      initConfig
	path     string // resolved command
	env      []string
	workdir  string
	cred     credentials
	hostProc string   // the host's /proc, reachable through an open descriptor
	stateDir *os.Root // the container's state directory, opened before the pivot
	output   *os.File // write end of the pipe to the container's log

	sigs     chan os.Signal
	stopping bool // told to stop: no more restarts
}

// stopSignals end the container: forwarded to the workload, then no restart.
var stopSignals = map[syscall.Signal]bool{syscall.SIGTERM: true, syscall.SIGINT: true, syscall.SIGQUIT: true}

// run supervises the workload until it is done and returns its last exit code.
func (w *workloadRunner) run() int {
	w.sigs = make(chan os.Signal, 32)
	signal.Notify(w.sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT,
		syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	policy := w.cfg.Restart
	if policy == "" {
		policy = Config{}.restartPolicy()
	}
	st := workloadState{Restarts: w.cfg.Restarts, LastExit: -1}
	var delays Backoff
	for {
		started := time.Now()
		code := initExitCode
		pid, err := w.start(&st)
		if err != nil {
			fmt.Fprintf(os.Stderr, "weft container-init: starting %s in %s: %v\n", w.path, w.workdir, err)
		} else {
			code = w.wait(pid)
		}
		st.Exits++
		st.LastPid, st.LastExit = st.Pid, code
		st.Pid, st.StartTime = 0, 0
		if w.stopping || !shouldRestart(policy, code) {
			st.State = model.StateExited
			w.record(st)
			return code
		}
		st.State = model.StateBackoff
		w.record(st)
		if !w.pause(delays.Delay(time.Since(started))) {
			st.State = model.StateExited
			w.record(st)
			return code
		}
		st.Restarts++
	}
}

// start forks the workload as the configured user in the workdir and
// records it as running. The returned pid is the one in the container's
// PID namespace.
func (w *workloadRunner) start(st *workloadState) (int, error) {
	pidfd := -1
	attr := &syscall.ProcAttr{
		Dir:   w.workdir,
		Env:   w.env,
		Files: []uintptr{0, w.output.Fd(), w.output.Fd()}, // /dev/null, and the pipe to the container's log
		Sys:   &syscall.SysProcAttr{PidFD: &pidfd},
	}
	if w.cfg.User != "" {
		attr.Sys.Credential = w.cred.sysCredential()
	}
	var pid int
	var err error
	if w.cfg.UserNS.On() {
		// In a new user (and cgroup) namespace, through the userns stage,
		// which takes on the ids and the confinement (userns.go).
		pid, err = w.startInUserNS(attr, &pidfd)
	} else {
		// Forked from a thread that has entered a new cgroup namespace and
		// dropped to the container's capabilities, no_new_privs and seccomp
		// filter: the workload starts with them, whoever it runs as.
		conf := defaultConfinement()
		conf.newCgroupNS = true
		pid, err = forkConfined(conf, func() (int, error) { return syscall.ForkExec(w.path, w.cfg.Command, attr) })
	}
	if err != nil {
		return 0, err
	}
	hostPid, startTime, err := w.hostView(pidfd)
	if pidfd >= 0 {
		_ = syscall.Close(pidfd)
	}
	if err != nil {
		// The workload runs; only its host pid is unknown. The record
		// then shows none, and the runtime reports the container without one.
		fmt.Fprintf(os.Stderr, "weft container-init: %v\n", err)
	}
	st.State, st.Pid, st.StartTime, st.Started = model.StateRunning, hostPid, startTime, time.Now().UTC()
	w.record(*st)
	return pid, nil
}

// startInUserNS starts the workload through the userns stage, as
// w.cred in the container's ids, with the descriptors and workdir of attr.
func (w *workloadRunner) startInUserNS(attr *syscall.ProcAttr, pidfd *int) (int, error) {
	st := userNSStage{
		Path: w.path, Argv: w.cfg.Command, Env: w.env,
		UID: w.cred.uid, GID: w.cred.gid, Groups: w.cred.groups,
		Caps: capMask(DefaultCapabilities),
	}
	files := [3]uintptr{attr.Files[0], attr.Files[1], attr.Files[2]}
	return startInUserNS("/proc/self/exe", "container-init", w.cfg.UserNS, st, syscall.CLONE_NEWCGROUP, attr.Dir, files, pidfd)
}

// hostView returns the pid and start time of the process behind pidfd as
// the host sees them: the pidfd's fdinfo, read through the host's /proc,
// gives its pid in that /proc's namespace.
func (w *workloadRunner) hostView(pidfd int) (int, uint64, error) {
	if pidfd < 0 {
		return 0, 0, fmt.Errorf("no pidfd for the workload")
	}
	b, err := os.ReadFile(fmt.Sprintf("%s/self/fdinfo/%d", w.hostProc, pidfd))
	if err != nil {
		return 0, 0, fmt.Errorf("reading the workload's host pid: %w", err)
	}
	pid := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			pid, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if pid <= 0 {
		return 0, 0, fmt.Errorf("no host pid in the workload's pidfd info %q", b)
	}
	stat, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", w.hostProc, pid))
	if err != nil {
		return 0, 0, fmt.Errorf("reading the workload's start time: %w", err)
	}
	startTime, err := parseStartTime(stat)
	if err != nil {
		return 0, 0, err
	}
	return pid, startTime, nil
}

// wait forwards signals to the workload and reaps every child (orphans of
// the container are re-parented to this pid 1) until the workload exits,
// and returns its exit code.
func (w *workloadRunner) wait(pid int) int {
	for {
		if code, done := reapChildren(pid); done {
			return code
		}
		sig := (<-w.sigs).(syscall.Signal)
		if sig == syscall.SIGCHLD {
			continue
		}
		if stopSignals[sig] {
			w.stopping = true
		}
		_ = syscall.Kill(pid, sig)
	}
}

// pause waits d before a restart, reaping orphans meanwhile, and reports
// false when told to stop.
func (w *workloadRunner) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case sig := <-w.sigs:
			if sig == syscall.SIGCHLD {
				reapChildren(0)
				continue
			}
			if stopSignals[sig.(syscall.Signal)] {
				w.stopping = true
				return false
			}
		}
	}
}

// reapChildren collects every exited child and reports the exit code of
// pid if it was among them.
func reapChildren(pid int) (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || got <= 0 {
			return code, done
		}
		if got == pid {
			code, done = exitCode(ws), true
		}
	}
}

// exitCode is a shell's view of a wait status: the code, or 128+signal.
func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return -1
}

// record writes the state; a failure only costs the agent's view, never the
// workload, so it is logged and supervision goes on.
func (w *workloadRunner) record(st workloadState) {
	if err := writeJSONAtomicIn(w.stateDir, workloadFile, st); err != nil {
		fmt.Fprintf(os.Stderr, "weft container-init: recording the workload: %v\n", err)
	}
}
