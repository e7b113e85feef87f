package runtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/nsthread"
)

// Child status codes of waitid's siginfo (si_code); x/sys/unix lacks them.
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// pollInterval bounds how long a wait for a process exit takes to notice a
// cancelled context.
const pollInterval = 100 * time.Millisecond

// errGone means the recorded process no longer exists (or its pid now
// belongs to another process).
var errGone = errors.New("process is gone")

// process is a container process the runtime watches through a pidfd, which
// names the process itself rather than a pid that may be reused.
type process struct {
	pid       int
	pidfd     int
	startTime uint64
	started   time.Time
}

func (p *process) close() { _ = unix.Close(p.pidfd) }

// attach opens the process recorded as (pid, startTime). The pidfd is opened
// before the start time is checked, so a match proves the pidfd names the
// recorded process and not a later one with the same pid.
func attach(pid int, startTime uint64) (*process, error) {
	if pid <= 0 {
		return nil, errGone
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, errGone
		}
		return nil, fmt.Errorf("opening pidfd of pid %d: %w", pid, err)
	}
	got, err := procStartTime(pid)
	if err != nil || got != startTime {
		_ = unix.Close(pidfd)
		return nil, errGone
	}
	return &process{pid: pid, pidfd: pidfd, startTime: startTime}, nil
}

// procStartTime reads field 22 (starttime, in clock ticks since boot) of
// /proc/<pid>/stat.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading stat of pid %d: %w", pid, err)
	}
	return parseStartTime(b)
}

// parseStartTime extracts field 22 of a /proc/<pid>/stat line. The command
// name (field 2) may hold spaces and parentheses, so fields are counted from
// the last ')'.
func parseStartTime(stat []byte) (uint64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("parsing /proc stat %q: no command name", stat)
	}
	fields := bytes.Fields(stat[end+1:])
	const startTimeField = 22 - 3 // fields after ')' begin with field 3 (state)
	if len(fields) <= startTimeField {
		return 0, fmt.Errorf("parsing /proc stat %q: only %d fields after the command name", stat, len(fields))
	}
	v, err := strconv.ParseUint(string(fields[startTimeField]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing start time in /proc stat: %w", err)
	}
	return v, nil
}

// awaitExit blocks until the process has exited or ctx is done.
func awaitExit(ctx context.Context, pidfd int) error {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := unix.Poll(fds, int(pollInterval/time.Millisecond))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("polling pidfd: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}

// reap collects the exit status of an exited process if it is this
// process's child, and returns its exit code: the code it exited with,
// 128+signal when killed, -1 when unknown (an adopted process whose status
// went to its real parent).
func reap(pidfd int) int {
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED|unix.WNOHANG, nil); err != nil {
		return -1
	}
	if info.Signo != int32(unix.SIGCHLD) {
		return -1
	}
	// unix.Siginfo hides the SIGCHLD union; si_status is at byte 24 on
	// 64-bit Linux (after signo, errno, code, padding, si_pid, si_uid).
	raw := (*[unsafe.Sizeof(info)]byte)(unsafe.Pointer(&info))
	status := int(int32(binary.NativeEndian.Uint32(raw[24:28])))
	switch info.Code {
	case cldExited:
		return status
	case cldKilled, cldDumped:
		return 128 + status
	}
	return -1
}

// terminate sends SIGTERM, waits up to grace (or until ctx is done), then
// sends SIGKILL and waits for the exit. It reaps the process only when
// reapIt is set, so that a Supervise watching the same process gets its exit
// code.
func terminate(ctx context.Context, p *process, grace time.Duration, reapIt bool) error {
	if err := unix.PidfdSendSignal(p.pidfd, unix.SIGTERM, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("sending SIGTERM to pid %d: %w", p.pid, err)
	}
	graceCtx, cancel := context.WithTimeout(ctx, grace)
	err := awaitExit(graceCtx, p.pidfd)
	cancel()
	if err != nil {
		if err := unix.PidfdSendSignal(p.pidfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("sending SIGKILL to pid %d: %w", p.pid, err)
		}
		// A killed process dies promptly; this wait does not depend on ctx
		// so that Stop never returns with the process still alive unless
		// the kernel itself is stuck.
		killCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
		defer cancel()
		if err := awaitExit(killCtx, p.pidfd); err != nil {
			return fmt.Errorf("pid %d still alive %s after SIGKILL: %w", p.pid, killTimeout, err)
		}
	}
	if reapIt {
		reap(p.pidfd)
	}
	return nil
}

// startInNetns starts cmd from an OS thread switched into the network
// namespace nsName (a name under /run/netns, or an absolute path); the child
// inherits the thread's namespace.
func startInNetns(cmd *exec.Cmd, nsName string) error {
	var ns netns.NsHandle
	var err error
	if len(nsName) > 0 && nsName[0] == '/' {
		ns, err = netns.GetFromPath(nsName)
	} else {
		ns, err = netns.GetFromName(nsName)
	}
	if err != nil {
		return fmt.Errorf("opening network namespace %s (it must exist before the container starts): %w", nsName, err)
	}
	defer ns.Close()
	return nsthread.Do(ns, cmd.Start)
}
