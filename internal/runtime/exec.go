package runtime

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// ExecCommand returns a command that runs argv as root in "/" inside the
// network, mount, PID and UTS namespaces of the container whose process is
// pid, with that process's environment. Its exit status is argv's. The
// command runs in its own process group so that cancelling ctx kills argv
// too, not only nsenter; clear SysProcAttr.Setpgid for an interactive
// terminal session.
func ExecCommand(ctx context.Context, pid int, argv []string) *exec.Cmd {
	args := append([]string{
		"--target", strconv.Itoa(pid),
		"--net", "--mount", "--pid", "--uts",
		"--wd=/",
		"--",
	}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = processEnv(pid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// nsenter forks argv into the PID namespace; kill the whole group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	return cmd
}

// processEnv is the environment of pid, or a default PATH when unreadable.
func processEnv(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	var env []string
	if err == nil {
		for kv := range bytes.SplitSeq(b, []byte{0}) {
			if len(kv) > 0 {
				env = append(env, string(kv))
			}
		}
	}
	if len(env) == 0 {
		env = []string{"PATH=" + defaultPath}
	}
	return env
}
