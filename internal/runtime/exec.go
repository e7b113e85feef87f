package runtime

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// execHelperArg is the hidden subcommand of the weft binary that enters a
// container for ExecCommand (see ContainerExecMain).
const execHelperArg = "container-exec"

// ExecCommand returns a command that runs argv inside the container whose
// workload is pid, as that container's own processes run: in its
// namespaces (mount and so its private root, PID, network, UTS, IPC,
// cgroup; and a user namespace with the workload's map when it has one,
// see userns.go), inside its cgroups (so its limits count it), as its user and
// groups, with its capability set, no_new_privs and seccomp filter, in
// "/", with a clean environment (PATH, HOME of the user, HOSTNAME, and
// the caller's TERM) rather than anything the container could have
// written. Its exit status is argv's.
//
// The command is this program itself (/proc/self/exe, so it works while
// the binary on disk is being replaced) run as `container-exec`: the
// program must dispatch that argument to ContainerExecMain, as the weft
// binary does. It runs in its own process group so that cancelling ctx
// kills argv too; clear SysProcAttr.Setpgid for an interactive terminal
// session.
func ExecCommand(ctx context.Context, pid int, argv []string) *exec.Cmd {
	args := append([]string{execHelperArg, strconv.Itoa(pid), "--"}, argv...)
	cmd := exec.CommandContext(ctx, "/proc/self/exe", args...)
	cmd.Args[0] = "weft"
	cmd.Env = []string{}
	if term := os.Getenv("TERM"); term != "" {
		cmd.Env = append(cmd.Env, "TERM="+term)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The helper forks argv into the PID namespace; kill the whole group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	return cmd
}
