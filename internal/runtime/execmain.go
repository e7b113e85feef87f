package runtime

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/cgroup"
)

// ContainerExecMain is the entry point of `weft container-exec PID -- ARGV`
// (see ExecCommand): it joins the cgroups of PID, enters its namespaces
// from a thread of its own, takes on its user and confinement there, forks
// ARGV from that thread, forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to
// it and exits with its exit status. When it cannot, it prints why and
// exits 126 (127 when ARGV is not found). It never returns.
func ContainerExecMain(args []string) {
	runUserNSStageIfAsked()
	goruntime.LockOSThread() // see ContainerInitMain
	code, err := containerExec(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "weft exec: %v\n", err)
	}
	os.Exit(code)
}

// target is what a container process runs as, read from the host's /proc.
type target struct {
	pid      int
	uid, gid int      // in the container (its user namespace's ids, when it has one)
	groups   []int    // the same
	cgroups  []string // "controller:path" of the hierarchies weft manages
	ids      IDMap    // its user namespace; zero when it has none
}

// execControllers are the cgroup v1 hierarchies an exec joins (those weft
// puts containers in).
var execControllers = []string{cgroup.Controller, cgroup.Freezer, cgroup.Memory, cgroup.CPU}

func containerExec(args []string) (int, error) {
	if len(args) == 1 && args[0] == execInsideArg {
		return execInside()
	}
	if len(args) < 3 || args[1] != "--" {
		return 2, errors.New("usage: weft container-exec PID -- CMD [ARGS...]")
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil || pid <= 0 {
		return 2, fmt.Errorf("container-exec: %q is not a pid", args[0])
	}
	argv := args[2:]
	t, err := readTarget(pid)
	if err != nil {
		return 126, err
	}
	// The whole helper joins first: argv is forked from it and inherits.
	if err := moveToCgroups(os.Getpid(), t.cgroups); err != nil {
		return 126, err
	}
	nsFiles, err := openNamespaces(pid)
	if err != nil {
		return 126, err
	}
	defer func() {
		for _, f := range nsFiles {
			f.Close()
		}
	}()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)

	job := execJob{Argv: argv, UID: t.uid, GID: t.gid, Groups: t.groups, IDs: t.ids}
	var child started
	if t.ids.On() {
		// The inner helper, forked inside every namespace of the
		// container, forks argv into its user namespace (userns.go).
		child, err = onThrowawayThread(func() error { return enterNamespaces(nsFiles) }, nil, func() (started, error) {
			payload, err := json.Marshal(job)
			if err != nil {
				return started{}, fmt.Errorf("encoding the exec: %w", err)
			}
			env := []string{execInsideEnv + "=" + string(payload)}
			if term := os.Getenv("TERM"); term != "" {
				env = append(env, "TERM="+term)
			}
			attr := &syscall.ProcAttr{Dir: "/", Env: env, Files: []uintptr{0, 1, 2}}
			p, err := syscall.ForkExec("/proc/self/exe", []string{"weft", execHelperArg, execInsideArg}, attr)
			if err != nil {
				return started{}, fmt.Errorf("starting the exec's inner helper in the container: %w", err)
			}
			return started{pid: p}, nil
		})
	} else {
		// Forked from a thread inside the container's namespaces that has
		// taken on its confinement.
		child, err = forkConfinedAfter(func() error { return enterNamespaces(nsFiles) }, defaultConfinement(), func() (started, error) {
			path, env, err := job.resolve()
			if err != nil {
				return job.failed(err)
			}
			groups := make([]uint32, len(t.groups))
			for i, g := range t.groups {
				groups[i] = uint32(g)
			}
			attr := &syscall.ProcAttr{
				Dir:   "/",
				Env:   env,
				Files: []uintptr{0, 1, 2},
				Sys: &syscall.SysProcAttr{
					// No Pdeathsig: it fires when the forking thread ends,
					// which this one does at once. ExecCommand's process
					// group takes argv down with the helper instead.
					Credential: &syscall.Credential{Uid: uint32(t.uid), Gid: uint32(t.gid), Groups: groups},
				},
			}
			p, err := syscall.ForkExec(path, argv, attr)
			if err != nil {
				return job.failed(err)
			}
			return started{pid: p}, nil
		})
	}
	if err != nil {
		if child.code == 0 {
			child.code = 126
		}
		return child.code, err
	}
	return waitForwarding(child.pid, argv[0], sigs)
}

// execInsideArg runs `weft container-exec` as the inner helper of an exec
// into a container with a user namespace: forked by the outer helper
// inside every namespace of the container (so its /proc and its pids are
// the container's, as Go's fork needs to write the maps), it forks argv
// through the userns stage and waits for it. It runs as host root, is not
// dumpable, and the container's processes (other ids, other user
// namespace) can neither signal nor trace it.
const execInsideArg = "--inside"

// execInsideEnv carries the inner helper's execJob.
const execInsideEnv = "WEFT_EXEC_INSIDE"

// started is a forked exec: its pid, or the exit status to give when it
// could not start.
type started struct {
	pid  int
	code int
}

// execJob is what an exec runs, and as whom (in the container's ids).
type execJob struct {
	Argv   []string `json:"argv"`
	UID    int      `json:"uid"`
	GID    int      `json:"gid"`
	Groups []int    `json:"groups"`
	IDs    IDMap    `json:"ids"`
}

// resolve finds argv[0] and builds the clean environment, inside the
// container (its root, its /etc/passwd, its hostname).
func (j execJob) resolve() (string, []string, error) {
	env := []string{"PATH=" + defaultPath, "HOME=" + homeOf(j.UID)}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		env = append(env, "HOSTNAME="+unix.ByteSliceToString(uts.Nodename[:]))
	}
	if term := os.Getenv("TERM"); term != "" {
		env = append(env, "TERM="+term)
	}
	slices.Sort(env)
	path := j.Argv[0]
	if !strings.Contains(path, "/") {
		p, err := lookPathIn(path, defaultPath)
		if err != nil {
			return "", nil, err
		}
		path = p
	}
	return path, env, nil
}

func (j execJob) failed(err error) (started, error) {
	code := 126
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, exec.ErrNotFound) {
		code = 127
	}
	return started{code: code}, fmt.Errorf("running %s in the container: %w", j.Argv[0], err)
}

// execInside is the inner helper (execInsideArg).
func execInside() (int, error) {
	var job execJob
	if err := json.Unmarshal([]byte(os.Getenv(execInsideEnv)), &job); err != nil || len(job.Argv) == 0 || !job.IDs.On() {
		return 126, fmt.Errorf("the inner exec helper has no job in %s (%v): it is started by weft container-exec", execInsideEnv, err)
	}
	if err := setNotDumpable(); err != nil {
		return 126, err
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	path, env, err := job.resolve()
	if err != nil {
		c, err := job.failed(err)
		return c.code, err
	}
	st := userNSStage{Path: path, Argv: job.Argv, Env: env, UID: job.UID, GID: job.GID, Groups: job.Groups, Caps: capMask(DefaultCapabilities)}
	pid, err := startInUserNS("/proc/self/exe", execHelperArg, job.IDs, st, 0, "/", [3]uintptr{0, 1, 2}, nil)
	if err != nil {
		c, err := job.failed(err)
		return c.code, err
	}
	return waitForwarding(pid, job.Argv[0], sigs)
}

// waitForwarding forwards sigs to the child pid until it exits, and
// returns its exit status.
func waitForwarding(pid int, name string, sigs <-chan os.Signal) (int, error) {
	exited := childExited(pid)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err != nil && err != syscall.EINTR {
			return 126, fmt.Errorf("waiting for %s: %w", name, err)
		}
		if got == pid {
			return exitCode(ws), nil
		}
		select {
		case s := <-sigs:
			_ = syscall.Kill(pid, s.(syscall.Signal))
		case <-exited:
		}
	}
}

// childExited returns a channel closed when pid (a child) has exited,
// watched through a pidfd.
func childExited(pid int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				return
			}
		}
	}()
	return ch
}

// readTarget reads who pid runs as and which cgroups it is in.
func readTarget(pid int) (target, error) {
	t := target{pid: pid}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return t, fmt.Errorf("reading the container process %d (is it running?): %w", pid, err)
	}
	if t.uid, t.gid, t.groups, err = parseStatusIDs(string(status)); err != nil {
		return t, fmt.Errorf("reading /proc/%d/status: %w", pid, err)
	}
	uidMap, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil {
		return t, fmt.Errorf("reading the user namespace of process %d: %w", pid, err)
	}
	if t.ids, err = parseIDMap(strings.TrimSpace(string(uidMap))); err != nil {
		return t, fmt.Errorf("process %d: %w", pid, err)
	}
	if t.ids.On() {
		// /proc shows host ids; the exec takes on the container's.
		if t.uid, t.gid, t.groups, err = containerIDs(t.ids, t.uid, t.gid, t.groups); err != nil {
			return t, fmt.Errorf("process %d: %w", pid, err)
		}
	}
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return t, fmt.Errorf("reading the cgroups of process %d: %w", pid, err)
	}
	t.cgroups = parseCgroups(string(cg), execControllers)
	return t, nil
}

// containerIDs turns host ids of a process with user namespace m into its own.
func containerIDs(m IDMap, uid, gid int, groups []int) (int, int, []int, error) {
	in := func(h int) (int, error) {
		n, ok := m.FromHost(uint32(h))
		if h < 0 || !ok {
			return 0, fmt.Errorf("host id %d is outside its user namespace's map %s", h, m)
		}
		return int(n), nil
	}
	cu, err := in(uid)
	if err != nil {
		return 0, 0, nil, err
	}
	cg, err := in(gid)
	if err != nil {
		return 0, 0, nil, err
	}
	var cgs []int
	for _, g := range groups {
		if n, err := in(g); err == nil {
			cgs = append(cgs, n)
		}
	}
	return cu, cg, cgs, nil
}

// parseStatusIDs reads the real uid and gid and the supplementary groups
// from a /proc/<pid>/status.
func parseStatusIDs(status string) (uid, gid int, groups []int, err error) {
	var haveUID, haveGID bool
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		switch key {
		case "Uid":
			if len(fields) > 0 {
				uid, err = strconv.Atoi(fields[0])
				haveUID = err == nil
			}
		case "Gid":
			if len(fields) > 0 {
				gid, err = strconv.Atoi(fields[0])
				haveGID = err == nil
			}
		case "Groups":
			for _, f := range fields {
				if g, err := strconv.Atoi(f); err == nil {
					groups = append(groups, g)
				}
			}
		}
	}
	if !haveUID || !haveGID {
		return 0, 0, nil, errors.New("no Uid or Gid line")
	}
	return uid, gid, groups, nil
}

// parseCgroups returns "controller:path" for every controller of want in a
// /proc/<pid>/cgroup (cgroup v1 lines "id:controllers:path").
func parseCgroups(procCgroup string, want []string) []string {
	var out []string
	for line := range strings.SplitSeq(procCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[1] == "" {
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if slices.Contains(want, c) {
				out = append(out, c+":"+parts[2])
			}
		}
	}
	slices.Sort(out)
	return out
}

// execNamespaces are entered in this order; mnt last, as it changes the
// root the others' paths would resolve in (they are open already anyway).
var execNamespaces = []struct {
	name string
	flag int
}{
	{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"net", unix.CLONE_NEWNET},
	{"cgroup", unix.CLONE_NEWCGROUP}, {"pid", unix.CLONE_NEWPID}, {"mnt", unix.CLONE_NEWNS},
}

func openNamespaces(pid int) ([]*os.File, error) {
	var files []*os.File
	for _, ns := range execNamespaces {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, ns.name))
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("opening the %s namespace of process %d: %w", ns.name, pid, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// enterNamespaces moves the calling (locked) thread into the namespaces;
// the PID namespace applies to the children it forks.
func enterNamespaces(files []*os.File) error {
	// A mount namespace can only be entered by a thread with a filesystem
	// context (root, cwd) of its own.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unsharing the filesystem context: %w", err)
	}
	for i, ns := range execNamespaces {
		if err := unix.Setns(int(files[i].Fd()), ns.flag); err != nil {
			return fmt.Errorf("entering the container's %s namespace: %w", ns.name, err)
		}
	}
	return unix.Chdir("/")
}

// homeOf is uid's home in the container's /etc/passwd, "/" when absent.
func homeOf(uid int) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 6 && fields[2] == strconv.Itoa(uid) {
			return fields[5]
		}
	}
	return "/"
}

// lookPathIn finds name in the directories of path (a PATH value).
func lookPathIn(name, path string) (string, error) {
	for dir := range strings.SplitSeq(path, ":") {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w in PATH %s", name, exec.ErrNotFound, path)
}
