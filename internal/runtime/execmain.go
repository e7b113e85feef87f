package runtime

import (
	"bufio"
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
	uid, gid int
	groups   []int
	cgroups  []string // "controller:path" of the hierarchies weft manages
}

// execControllers are the cgroup v1 hierarchies an exec joins (those weft
// puts containers in).
var execControllers = []string{cgroup.Controller, cgroup.Freezer, cgroup.Memory, cgroup.CPU}

func containerExec(args []string) (int, error) {
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
	for _, cg := range t.cgroups {
		controller, path, _ := strings.Cut(cg, ":")
		procs := filepath.Join(cgroup.Root, controller, path, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return 126, fmt.Errorf("joining the container's cgroup %s: %w", procs, err)
		}
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

	type started struct {
		pid  int
		code int
	}
	child, err := forkConfinedAfter(func() error { return enterNamespaces(nsFiles) }, defaultConfinement(), func() (started, error) {
		// On the thread inside the container: its root, its hostname.
		home := homeOf(t.uid)
		env := []string{"PATH=" + defaultPath, "HOME=" + home}
		var uts unix.Utsname
		if unix.Uname(&uts) == nil {
			env = append(env, "HOSTNAME="+unix.ByteSliceToString(uts.Nodename[:]))
		}
		if term := os.Getenv("TERM"); term != "" {
			env = append(env, "TERM="+term)
		}
		slices.Sort(env)
		path := argv[0]
		if !strings.Contains(path, "/") {
			p, err := lookPathIn(path, defaultPath)
			if err != nil {
				return started{code: 127}, err
			}
			path = p
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
			code := 126
			if errors.Is(err, syscall.ENOENT) {
				code = 127
			}
			return started{code: code}, fmt.Errorf("running %s in the container: %w", argv[0], err)
		}
		return started{pid: p}, nil
	})
	if err != nil {
		if child.code == 0 {
			child.code = 126
		}
		return child.code, err
	}
	exited := childExited(child.pid)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(child.pid, &ws, syscall.WNOHANG, nil)
		if err != nil && err != syscall.EINTR {
			return 126, fmt.Errorf("waiting for %s: %w", argv[0], err)
		}
		if got == child.pid {
			return exitCode(ws), nil
		}
		select {
		case s := <-sigs:
			_ = syscall.Kill(child.pid, s.(syscall.Signal))
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
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return t, fmt.Errorf("reading the cgroups of process %d: %w", pid, err)
	}
	t.cgroups = parseCgroups(string(cg), execControllers)
	return t, nil
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
