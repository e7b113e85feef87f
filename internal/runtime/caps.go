package runtime

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// DefaultCapabilities is the capability set of every container process:
// its bounding set, and its permitted and effective sets when it runs as
// root (a non-root user starts with none). It is Docker's default set
// without CAP_NET_RAW (ping works through unprivileged ICMP sockets
// instead, see buildProc), CAP_MKNOD, CAP_SYS_CHROOT, CAP_SETPCAP,
// CAP_SETFCAP and CAP_AUDIT_WRITE: enough to change file owners and modes,
// drop to another user, signal its own processes and bind ports below 1024.
var DefaultCapabilities = []int{
	unix.CAP_CHOWN,
	unix.CAP_DAC_OVERRIDE,
	unix.CAP_FOWNER,
	unix.CAP_FSETID,
	unix.CAP_KILL,
	unix.CAP_SETGID,
	unix.CAP_SETUID,
	unix.CAP_NET_BIND_SERVICE,
}

// capMask is the bit mask of caps, as /proc/<pid>/status shows CapEff.
func capMask(caps []int) uint64 {
	var m uint64
	for _, c := range caps {
		m |= 1 << uint(c)
	}
	return m
}

// dropCapabilities limits the calling thread to keep: bounding set,
// permitted, effective, no inheritable or ambient capabilities. Callers
// hold the thread locked (capabilities are per thread); a child forked
// from it keeps the limit across execve whoever it runs as.
func dropCapabilities(keep uint64) error {
	for c := 0; c < 64; c++ {
		if keep&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the kernel's last capability
			}
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(keep), Permitted: uint32(keep)},
		{Effective: uint32(keep >> 32), Permitted: uint32(keep >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("limiting capabilities: %w", err)
	}
	return nil
}

// confinement is what a container process is limited to beyond its
// namespaces; the same for the workload and for `weft exec`.
type confinement struct {
	caps    uint64 // capMask of the capabilities kept
	seccomp bool   // load the default seccomp filter
	// newCgroupNS puts the process in a new cgroup namespace rooted at
	// the cgroup it is in (the container's).
	newCgroupNS bool
}

func defaultConfinement() confinement {
	return confinement{caps: capMask(DefaultCapabilities), seccomp: true}
}

// forkConfined runs start (a fork+exec) on a thread of its own that first
// takes on c: a new cgroup namespace if asked, no_new_privs, the reduced
// capabilities and the seccomp filter. The child is a copy of that thread
// and keeps all of it across execve. The thread is then thrown away (its
// goroutine ends locked), so the rest of the process keeps its privileges.
func forkConfined[T any](c confinement, start func() (T, error)) (T, error) {
	return forkConfinedAfter(nil, c, start)
}

// forkConfinedAfter is forkConfined with enter run on the thread first
// (e.g. to enter a container's namespaces), with all privileges.
func forkConfinedAfter[T any](enter func() error, c confinement, start func() (T, error)) (T, error) {
	return onThrowawayThread(enter, &c, start)
}

// onThrowawayThread runs enter, then the confinement c (none when nil),
// then start on a thread of its own that is thrown away afterwards.
func onThrowawayThread[T any](enter func() error, c *confinement, start func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the runtime ends this thread with the goroutine.
		var zero T
		if enter != nil {
			if err := enter(); err != nil {
				done <- result{zero, err}
				return
			}
		}
		if c != nil {
			if err := confineThread(*c); err != nil {
				done <- result{zero, err}
				return
			}
		}
		v, err := start()
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}

// confineThread applies c to the calling (locked) thread.
func confineThread(c confinement) error {
	if c.newCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("creating the container's cgroup namespace: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	if err := dropCapabilities(c.caps); err != nil {
		return err
	}
	if c.seccomp {
		if err := loadSeccomp(); err != nil {
			return err
		}
	}
	return nil
}

// setNotDumpable keeps the container's processes (root in the container,
// without CAP_SYS_PTRACE) from reading the init's memory, environment or
// executable through /proc.
func setNotDumpable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("making container-init not dumpable: %w", err)
	}
	return nil
}
