package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/weft-dev/weft/internal/cgroup"
)

// PidFile is the path of a file that records one background process as
// "<pid> <start time>\n", the start time being field 22 of /proc/<pid>/stat,
// so that a later pid reuse is not mistaken for the process. It is the one
// way weft remembers a process it does not wait for: the platform daemons
// below, the lab's host supervisors and the agents they run.
type PidFile string

// Write records pid, replacing the file atomically so a reader never sees
// half a record.
func (f PidFile) Write(pid int) error {
	st, err := procStartTime(pid)
	if err != nil {
		return fmt.Errorf("recording pid %d in %s: %w", pid, f, err)
	}
	tmp := string(f) + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", pid, st), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, string(f)); err != nil {
		return fmt.Errorf("replacing %s: %w", f, err)
	}
	return nil
}

// Read returns the recorded pid and whether that very process still runs
// (same start time, not a zombie). A missing or malformed file reads as
// (0, false).
func (f PidFile) Read() (pid int, alive bool) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, false
	}
	pid, err = strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return 0, false
	}
	st, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return pid, false
	}
	got, err := procStartTime(pid)
	return pid, err == nil && got == st && !isZombie(pid)
}

// Remove forgets the record.
func (f PidFile) Remove() error {
	if err := os.Remove(string(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", f, err)
	}
	return nil
}

// EnsureDaemon keeps one platform process running (a host's DNS resolver,
// a cluster's loopback publisher, a lab host's supervisor): if the process
// recorded in <dir>/<name>.pid is alive it is left alone, else argv is
// started in the caller's network namespace, in its own session and in
// cgroup cgroupRel, with its output appended to <dir>/<name>.log. Like
// containers, it outlives whoever started it, so the data plane does not
// depend on an agent or the CLI being alive.
func EnsureDaemon(dir, cgroupRel, name string, argv []string) (pid int, started bool, err error) {
	pidFile := PidFile(filepath.Join(dir, name+".pid"))
	if p, alive := pidFile.Read(); alive {
		return p, false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, false, fmt.Errorf("creating state dir of %s: %w", name, err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, false, fmt.Errorf("opening log of %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, false, fmt.Errorf("starting %s: %w", name, err)
	}
	pid = cmd.Process.Pid
	// Reap it if it dies while the caller lives; after that it is init's.
	go func() { _ = cmd.Wait() }()
	if err := cgroup.Join(cgroupRel, pid); err != nil {
		_ = cmd.Process.Kill()
		return 0, false, err
	}
	if err := pidFile.Write(pid); err != nil {
		_ = cmd.Process.Kill()
		return 0, false, fmt.Errorf("recording pid of %s: %w", name, err)
	}
	return pid, true, nil
}

// StopDaemon ends the process recorded as <dir>/<name>.pid, if it still
// runs, and forgets it.
func StopDaemon(dir, name string) error {
	pidFile := PidFile(filepath.Join(dir, name+".pid"))
	if pid, alive := pidFile.Read(); alive {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := pidFile.Remove(); err != nil {
		return fmt.Errorf("forgetting %s: %w", name, err)
	}
	return nil
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	end := strings.LastIndexByte(string(b), ')')
	return end < 0 || strings.HasPrefix(strings.TrimSpace(string(b[end+1:])), "Z")
}
