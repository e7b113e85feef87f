package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/weft-dev/weft/internal/cgroup"
)

// EnsureDaemon keeps one platform process running (a host's DNS resolver,
// a cluster's loopback publisher): if the process recorded as <dir>/<name>.pid
// is alive it is left alone, else argv is started in the caller's network
// namespace, in its own session and in cgroup cgroupRel, with its output
// appended to <dir>/<name>.log. Like containers, it outlives whoever started
// it, so the data plane does not depend on an agent or the CLI being alive.
func EnsureDaemon(dir, cgroupRel, name string, argv []string) (pid int, started bool, err error) {
	pidPath := filepath.Join(dir, name+".pid")
	if b, err := os.ReadFile(pidPath); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			p, _ := strconv.Atoi(f[0])
			st, _ := strconv.ParseUint(f[1], 10, 64)
			if got, err := procStartTime(p); err == nil && got == st && !isZombie(p) {
				return p, false, nil
			}
		}
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
	// Reap it if it dies while this agent lives; after that it is init's.
	go func() { _ = cmd.Wait() }()
	if err := cgroup.Join(cgroupRel, pid); err != nil {
		_ = cmd.Process.Kill()
		return 0, false, err
	}
	st, err := procStartTime(pid)
	if err != nil {
		return 0, false, err
	}
	if err := os.WriteFile(pidPath, []byte(fmt.Sprintf("%d %d\n", pid, st)), 0o644); err != nil {
		return 0, false, fmt.Errorf("recording pid of %s: %w", name, err)
	}
	return pid, true, nil
}

// StopDaemon ends the process recorded as <dir>/<name>.pid, if it still
// runs, and forgets it.
func StopDaemon(dir, name string) error {
	pidPath := filepath.Join(dir, name+".pid")
	b, err := os.ReadFile(pidPath)
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) == 2 {
		p, _ := strconv.Atoi(f[0])
		st, _ := strconv.ParseUint(f[1], 10, 64)
		if got, err := procStartTime(p); err == nil && got == st {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	if err := os.Remove(pidPath); err != nil && !os.IsNotExist(err) {
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
