package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A container's processes run in a user namespace of their own (IDMap):
// root in the container is an unprivileged host uid, its capabilities
// count only in that namespace (which owns none of the container's other
// namespaces: they belong to the host's), and host files it does not own
// through the map are "other" to it whatever its capabilities.
//
// How a process gets there. The kernel lets a multithreaded process (every
// Go program) create a user namespace with clone, but not join one
// (setns) nor unshare into one. So the init (for the workload) and the
// inner helper of `weft container-exec` (for exec and exec probes, see
// execInside) clone a child with CLONE_NEWUSER (startInUserNS): Go's fork
// writes its uid and gid maps and makes it the mapped root before it
// exec's this binary again, through /proc/self/exe (nothing of the host's
// files needs to be visible), as the userns stage (userNSStage). The
// stage, on one locked thread that it exec's from, takes on the
// confinement (no_new_privs, the capability set, the seccomp filter, which
// refuses user namespaces from then on), then the ids (setgroups,
// setresgid, setresuid; a uid other than 0 loses every capability), and
// exec's the workload. An exec therefore runs in a sibling namespace with
// the same map, not in the workload's own: same ids, same files; it can
// signal the workload's processes of its own uid only.

// userNSStageEnv carries the stage's JSON config (userNSStage); the stage
// is entered from ContainerInitMain or ContainerExecMain when it is set.
const userNSStageEnv = "WEFT_USERNS_STAGE"

// userNSStage is what the stage exec's, and as whom.
type userNSStage struct {
	Path   string   `json:"path"`
	Argv   []string `json:"argv"`
	Env    []string `json:"env"`
	UID    int      `json:"uid"`    // in the container
	GID    int      `json:"gid"`    // in the container
	Groups []int    `json:"groups"` // in the container
	Caps   uint64   `json:"caps"`   // capMask kept by root; a non-root uid loses them at setresuid
	// Probe only checks that the namespace works (userNSWorks) and exits 0.
	Probe bool `json:"probe,omitempty"`
}

// runUserNSStageIfAsked runs the stage and never returns when this process
// is one (its environment holds userNSStageEnv).
func runUserNSStageIfAsked() {
	payload, ok := os.LookupEnv(userNSStageEnv)
	if !ok {
		return
	}
	goruntime.LockOSThread()
	err := userNSStageMain(payload)
	fmt.Fprintf(os.Stderr, "weft: entering the container's user namespace: %v\n", err)
	os.Exit(initExitCode)
}

func userNSStageMain(payload string) error {
	var st userNSStage
	if err := json.Unmarshal([]byte(payload), &st); err != nil {
		return fmt.Errorf("decoding %s: %w", userNSStageEnv, err)
	}
	if st.Probe {
		if err := setIDsThisThread(st.UID, st.GID, st.Groups); err != nil {
			return err
		}
		if os.Getuid() != st.UID {
			return fmt.Errorf("uid is %d after the map, not %d", os.Getuid(), st.UID)
		}
		os.Exit(0)
	}
	// The confinement first (the capabilities kept include CAP_SETUID and
	// CAP_SETGID), then the ids: a uid other than 0 loses every capability
	// on the way, as the kernel does for any setuid from root.
	if err := confineThread(confinement{caps: st.Caps, seccomp: true}); err != nil {
		return err
	}
	if err := setIDsThisThread(st.UID, st.GID, st.Groups); err != nil {
		return err
	}
	if err := unix.Exec(st.Path, st.Argv, st.Env); err != nil {
		return fmt.Errorf("running %s: %w", st.Path, err)
	}
	return nil
}

// setIDsThisThread sets the calling thread's groups, gid and uid (raw
// system calls: per thread in Linux, and this thread is the one that
// exec's).
func setIDsThisThread(uid, gid int, groups []int) error {
	gs := make([]uint32, len(groups))
	for i, g := range groups {
		gs[i] = uint32(g)
	}
	var p *uint32
	if len(gs) > 0 {
		p = &gs[0]
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gs)), uintptr(unsafe.Pointer(p)), 0); e != 0 {
		return fmt.Errorf("setting groups %v: %w", groups, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("setting gid %d: %w", gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("setting uid %d: %w", uid, e)
	}
	return nil
}

// startInUserNS starts exe (this program, or one that dispatches sub the
// same way: "container-init" or "container-exec") as the userns stage, in
// a new user namespace with map m (and the extra clone flags), with files
// as its descriptors 0, 1, 2, in dir. Go's fork writes the maps through
// /proc/<pid> with the pid clone returns, so the calling thread's /proc
// must be of its own PID namespace (the container's for the init and the
// exec's inner helper, the host's for the agent). The child becomes the
// mapped root before it exec's the stage, so the stage starts with every
// capability of its new namespace (and none outside it).
func startInUserNS(exe, sub string, m IDMap, st userNSStage, extraClone uintptr, dir string, files [3]uintptr, pidfd *int) (int, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("encoding the userns stage: %w", err)
	}
	ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.HostBase), Size: int(m.Size)}}
	attr := &syscall.ProcAttr{
		Dir:   dir,
		Env:   []string{userNSStageEnv + "=" + string(payload)},
		Files: files[:],
		Sys: &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER | extraClone,
			UidMappings:                ids,
			GidMappings:                ids,
			GidMappingsEnableSetgroups: true,
			Credential:                 &syscall.Credential{Uid: 0, Gid: 0},
			PidFD:                      pidfd,
		},
	}
	pid, err := syscall.ForkExec(exe, []string{"weft", sub}, attr)
	if err != nil {
		return 0, fmt.Errorf("starting a process in a new user namespace (%s): %w", m, err)
	}
	return pid, nil
}

// errUserNSUnavailable wraps why the kernel gives no user namespace.
var errUserNSUnavailable = errors.New("user namespaces are unavailable")

// userNSWorks reports (once per Runtime, the kernel does not change its
// mind) whether a user namespace with a map like m can be made and
// entered: a probe runs the userns stage of r.Exe, which checks its uid.
func (r *Runtime) userNSWorks(m IDMap) error {
	r.userNSOnce.Do(func() {
		if err := probeUserNS(r.Exe, m); err != nil {
			r.userNSErr = fmt.Errorf("%w: %v", errUserNSUnavailable, err)
		}
	})
	return r.userNSErr
}

func probeUserNS(exe string, m IDMap) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer errR.Close()
	// Through a descriptor: the mapped root may not traverse the
	// directories to exe (the init uses /proc/self/exe the same way).
	bin, err := os.Open(exe)
	if err != nil {
		return fmt.Errorf("opening %s: %w", exe, err)
	}
	defer bin.Close()
	self := fmt.Sprintf("/proc/self/fd/%d", bin.Fd())
	pid, err := startInUserNS(self, "container-init", m, userNSStage{Probe: true}, 0, "/", [3]uintptr{null.Fd(), null.Fd(), errW.Fd()}, nil)
	errW.Close()
	if err != nil {
		return err
	}
	why, _ := io.ReadAll(io.LimitReader(errR, 4096))
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("waiting for the probe: %w", err)
	}
	if code := exitCode(ws); code != 0 {
		return fmt.Errorf("the probe in a new user namespace (%s) exited with %d: %s", m, code, strings.TrimSpace(string(why)))
	}
	return nil
}
