package runtime

import (
	"fmt"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// The default seccomp filter of every container process. It allows every
// system call except those below, like Docker's default profile: kernel
// modules, kexec, reboot, swap, clock and time setting, accounting and
// quotas, mounts and pivot_root, new namespaces (unshare, setns, clone
// with CLONE_NEWUSER; clone3 answers ENOSYS, so libc falls back to clone,
// whose flags the filter can see), ptrace and cross-process memory access,
// keyrings, bpf, perf events, userfaultfd, io_uring, handle-based opens,
// and obsolete calls. Most of them also need a capability the container
// does not have; the filter is the second wall, and it closes what needs
// none (user namespaces, keyrings, userfaultfd, io_uring, perf).
//
// Library: github.com/elastic/go-seccomp-bpf, pure Go (weft builds without
// cgo and needs no libseccomp on the hosts), maintained by Elastic for
// Beats, and it assembles per-architecture filters that refuse the x32 ABI
// and foreign architectures, so a deny list cannot be bypassed that way.

// deniedSyscalls answer EPERM.
var deniedSyscalls = []string{
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
	"finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "init_module",
	"io_uring_enter", "io_uring_register", "io_uring_setup", "ioperm", "iopl", "kcmp",
	"kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr",
	"move_mount", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree",
	"perf_event_open", "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace",
	"query_module", "quotactl", "reboot", "request_key", "setns", "settimeofday", "swapoff",
	"swapon", "_sysctl", "syslog", "umount2", "unshare", "uselib", "userfaultfd", "ustat",
	"vhangup",
}

// enosysSyscalls answer ENOSYS, so callers fall back to older calls.
var enosysSyscalls = []string{"clone3"}

func defaultSeccompPolicy() seccomp.Policy {
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: deniedSyscalls},
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: enosysSyscalls},
			{
				Action: seccomp.ActionErrno,
				NamesWithCondtions: []seccomp.NameWithConditions{{
					Name: "clone",
					Conditions: seccomp.ArgumentConditions{
						{Argument: 0, Operation: seccomp.BitsSet, Value: unix.CLONE_NEWUSER},
					},
				}},
			},
		},
	}
}

// loadSeccomp installs the default filter on the calling thread (no
// TSYNC: only the locked thread a container process is forked from).
// no_new_privs must already be set.
func loadSeccomp() error {
	if err := seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Policy: defaultSeccompPolicy()}); err != nil {
		return fmt.Errorf("loading the seccomp filter: %w", err)
	}
	return nil
}
