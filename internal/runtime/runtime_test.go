package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// initExe is the test stand-in for the weft binary, built once in TestMain;
// empty when the tests cannot run as root.
var initExe string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	// ExecCommand runs this binary (/proc/self/exe) as the exec helper.
	if len(os.Args) > 1 && os.Args[1] == execHelperArg {
		ContainerExecMain(os.Args[2:])
	}
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "weft-runtime-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		initExe = filepath.Join(dir, "weft")
		build := exec.Command("go", "build", "-o", initExe, "./testdata/initbin")
		// Static, as make build builds weft: the userns stage runs it in an image's root.
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building the container-init test binary:", err)
			return 1
		}
	}
	return m.Run()
}

// lab is one test's cluster: a unique cluster name, a runtime with its own
// state root, and cleanups that kill every process and remove every netns
// the test created, also when it fails.
type lab struct {
	t       *testing.T
	cluster string
	host    string
	rt      *Runtime
}

func newLab(t *testing.T) *lab {
	t.Helper()
	if initExe == "" {
		t.Skip("needs root (namespaces, mounts, cgroups)")
	}
	l := &lab{
		t:       t,
		cluster: fmt.Sprintf("rt%d%d", os.Getpid(), time.Now().UnixNano()%1_000_000),
		host:    "h1",
	}
	l.rt = &Runtime{
		StateRoot: t.TempDir(),
		Exe:       initExe,
		Log:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	t.Cleanup(func() {
		if err := cgroup.KillAll(naming.CgroupRelPath(l.cluster), 10*time.Second); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return l
}

// netns creates the container's network namespace, as the overlay would.
func (l *lab) netns(container string) string {
	l.t.Helper()
	name := naming.ContainerNetns(l.cluster, "h", container)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		l.t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	l.t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			l.t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

func (l *lab) config(container string, command ...string) Config {
	return Config{
		Cluster: l.cluster, Host: l.host, Container: container, Service: "svc",
		Command: command,
		Netns:   l.netns(container),
		Restart: spec.RestartAlways,
	}
}

// recorder collects a Supervise's events.
type recorder struct {
	mu     sync.Mutex
	events []Event
	seen   int // events already consumed by next
}

func (r *recorder) add(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// next returns the next unconsumed event in state, skipping others.
func (r *recorder) next(t *testing.T, state string) Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for r.seen < len(r.events) {
			e := r.events[r.seen]
			r.seen++
			if e.State == state {
				r.mu.Unlock()
				return e
			}
		}
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s event within 15s; events: %+v", state, r.all())
	return Event{}
}

// supervision is one running Supervise call.
type supervision struct {
	events *recorder
	cancel context.CancelFunc
	done   chan error
}

// wait returns Supervise's result, failing the test if it does not return.
func (s *supervision) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // keep it for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Supervise did not return within 15s")
		return nil
	}
}

func (l *lab) supervise(cfg Config) *supervision {
	ctx, cancel := context.WithCancel(context.Background())
	s := &supervision{events: &recorder{}, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- l.rt.Supervise(ctx, cfg, s.events.add) }()
	// Registered after the lab's cleanups, so it runs before them: the
	// goroutine is gone before processes are killed.
	l.t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			l.t.Error("Supervise did not return after cancel")
		}
	})
	return s
}

// waitFor polls cond until it holds or 15s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *lab) logContains(container, want string) func() bool {
	return func() bool {
		b, _ := os.ReadFile(l.rt.LogPath(l.cluster, l.host, container))
		return bytes.Contains(b, []byte(want))
	}
}

func (l *lab) log(container string) string {
	b, _ := os.ReadFile(l.rt.LogPath(l.cluster, l.host, container))
	return string(b)
}

func gone(pid int) func() bool {
	return func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		return errors.Is(err, os.ErrNotExist)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func (l *lab) cgroupPids(container string) []int {
	l.t.Helper()
	pids, err := cgroup.Pids(cgroupPath(l.cluster, l.host, container))
	if err != nil {
		l.t.Fatal(err)
	}
	return pids
}

func TestContainerNamespacesMountsAndStop(t *testing.T) {
	l := newLab(t)
	tmp := t.TempDir()
	// The mount point sits on a shared mount, so a bind mount made inside the
	// container would show on the host unless the init makes "/" rprivate.
	shared := filepath.Join(tmp, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "weft-test", shared).CombinedOutput(); err != nil {
		t.Fatalf("mounting tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", shared).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", shared, err, out)
		}
	})
	if out, err := exec.Command("mount", "--make-shared", shared).CombinedOutput(); err != nil {
		t.Fatalf("making %s shared: %v: %s", shared, err, out)
	}
	volHost, volInside := filepath.Join(tmp, "host-vol"), filepath.Join(shared, "inside", "data")
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	hostName, _ := os.Hostname()

	// The workload ignores SIGTERM, so Stop must escalate to SIGKILL.
	cfg := l.config("web-1", "sh", "-c", `
		trap "" TERM
		echo "pid=$$"
		echo "hostname=$(hostname)"
		cat /etc/resolv.conf /etc/hosts
		echo written > `+volInside+`/f
		echo "env=$GREETING"
		sleep 1000 & sleep 1000 & echo ready; wait`)
	cfg.Hostname = "web-1"
	cfg.ResolvConf = "nameserver 10.10.0.1 # weft-test-resolv\n"
	cfg.Hosts = "10.10.0.7 db # weft-test-hosts\n"
	cfg.Env = map[string]string{"GREETING": "hello"}
	cfg.Volumes = []Mount{{HostPath: volHost, Path: volInside}}
	s := l.supervise(cfg)

	s.events.next(t, model.StateStarting)
	running := s.events.next(t, model.StateRunning)
	if running.Adopted || running.Restarts != 0 || running.Pid <= 0 {
		t.Fatalf("first running event = %+v, want a fresh process", running)
	}
	pid := running.Pid
	waitFor(t, "the container to print ready", l.logContains("web-1", "ready"))
	out := l.log("web-1")

	if got, want := inode(t, fmt.Sprintf("/proc/%d/ns/net", pid)), inode(t, "/run/netns/"+cfg.Netns); got != want {
		t.Errorf("container netns inode %d, want %d (%s)", got, want, cfg.Netns)
	}
	if inode(t, fmt.Sprintf("/proc/%d/ns/pid", pid)) == inode(t, "/proc/self/ns/pid") {
		t.Error("container shares the test's PID namespace")
	}
	// container-init is pid 1 of the container and the workload its child:
	// it prints its pid in the container's namespace.
	for _, want := range []string{fmt.Sprintf("pid=%d\n", nsPid(t, pid)), "hostname=web-1\n", "# weft-test-resolv", "# weft-test-hosts", "env=hello\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	if now, _ := os.ReadFile("/etc/resolv.conf"); !bytes.Equal(now, hostResolv) {
		t.Errorf("host /etc/resolv.conf changed to %q", now)
	}
	if now, _ := os.Hostname(); now != hostName {
		t.Errorf("host hostname changed to %q", now)
	}
	if b, err := os.ReadFile(filepath.Join(volHost, "f")); err != nil || string(b) != "written\n" {
		t.Errorf("volume file on the host: %q, %v; want \"written\\n\"", b, err)
	}
	if entries, _ := os.ReadDir(volInside); len(entries) != 0 {
		t.Errorf("the container's bind mount leaked to the host: %s holds %d entries", volInside, len(entries))
	}
	// Only stdin (/dev/null) and the log: no pipe to the agent, no leaked
	// start-signal descriptor.
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil || len(fds) != 3 {
		t.Errorf("container pid 1 has fds %v (%v), want 0, 1 and 2", fds, err)
	}
	if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid)); target != "/dev/null" {
		t.Errorf("stdin is %q, want /dev/null", target)
	}
	// The workload writes to a pipe its init copies into the (rotated) log.
	if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", pid)); !strings.HasPrefix(target, "pipe:") {
		t.Errorf("stdout is %q, want the pipe to the init", target)
	}
	if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", parentPid(t, pid))); target != l.rt.LogPath(l.cluster, l.host, "web-1") {
		t.Errorf("the init's stdout is %q, want the log", target)
	}
	if pids := l.cgroupPids("web-1"); len(pids) != 4 {
		t.Errorf("cgroup holds %v, want the container's 4 processes (init, sh, 2 sleeps)", pids)
	}
	recs, err := l.rt.Records(l.cluster, l.host)
	if err != nil || len(recs) != 1 || recs[0].Pid != parentPid(t, pid) || recs[0].Hash != cfg.Hash() || recs[0].Container != "web-1" {
		t.Fatalf("Records = %+v, %v; want one record of pid %d's init", recs, err, pid)
	}

	if err := l.rt.Stop(context.Background(), l.cluster, l.host, "web-1", 200*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if pids := l.cgroupPids("web-1"); len(pids) != 0 {
		t.Errorf("cgroup still holds %v after Stop", pids)
	}
	if err := s.wait(t); err != nil {
		t.Errorf("Supervise after Stop: %v", err)
	}
	exited := s.events.next(t, model.StateExited)
	if exited.Pid != pid || exited.ExitCode != 128+int(syscall.SIGKILL) {
		t.Errorf("exit event %+v, want pid %d killed by SIGKILL", exited, pid)
	}
	waitFor(t, "the stopped process to be reaped", gone(pid))
	if recs, _ := l.rt.Records(l.cluster, l.host); len(recs) != 0 {
		t.Errorf("records after Stop: %+v", recs)
	}
	if _, err := os.Stat(l.rt.LogPath(l.cluster, l.host, "web-1")); err != nil {
		t.Errorf("Stop removed the log: %v", err)
	}
	for _, e := range s.events.all() {
		if e.State == model.StateStarting && e.Restarts > 0 {
			t.Errorf("stopped container was restarted: %+v", e)
		}
	}
	// Stop is safe when nothing runs.
	if err := l.rt.Stop(context.Background(), l.cluster, l.host, "web-1", time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestUserAndExitCode(t *testing.T) {
	l := newLab(t)
	cfg := l.config("job-1", "sh", "-c", `echo "ids=$(id -u):$(id -g) home=$HOME"; exit 3`)
	cfg.User = "nobody"
	cfg.Restart = spec.RestartNever
	s := l.supervise(cfg)
	exited := s.events.next(t, model.StateExited)
	if exited.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", exited.ExitCode)
	}
	if err := s.wait(t); err != nil {
		t.Errorf("Supervise: %v", err)
	}
	// The log's copier may still be writing when the exit is reported.
	waitFor(t, "the nobody user in the output", l.logContains("job-1", "ids=65534:65534 home=/nonexistent"))
}

func TestOnFailureStopsAfterCleanExit(t *testing.T) {
	l := newLab(t)
	cfg := l.config("once-1", "true")
	cfg.Restart = spec.RestartOnFailure
	s := l.supervise(cfg)
	if e := s.events.next(t, model.StateExited); e.ExitCode != 0 || e.Restarts != 0 {
		t.Errorf("exit event %+v, want code 0 without restarts", e)
	}
	if err := s.wait(t); err != nil {
		t.Errorf("Supervise: %v", err)
	}
}

func TestSetupFailureIsReported(t *testing.T) {
	l := newLab(t)
	cfg := l.config("bad-1", "no-such-command-weft")
	cfg.Restart = spec.RestartNever
	s := l.supervise(cfg)
	if e := s.events.next(t, model.StateExited); e.ExitCode != 127 {
		t.Errorf("exit event %+v, want code 127", e)
	}
	waitFor(t, "the log to explain the failure", func() bool {
		out := l.log("bad-1")
		return strings.Contains(out, "weft container-init:") && strings.Contains(out, "no-such-command-weft")
	})
}

func TestRestartAlwaysAfterKill(t *testing.T) {
	l := newLab(t)
	s := l.supervise(l.config("api-1", "sleep", "1000"))
	first := s.events.next(t, model.StateRunning)
	init := parentPid(t, first.Pid)
	if err := syscall.Kill(first.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := s.events.next(t, model.StateBackoff); e.ExitCode != 137 || e.Pid != first.Pid {
		t.Errorf("backoff event %+v, want pid %d exit 137", e, first.Pid)
	}
	second := s.events.next(t, model.StateRunning)
	if second.Pid == first.Pid || second.Restarts != 1 || second.Adopted {
		t.Errorf("after kill: %+v, want a new pid with Restarts 1", second)
	}
	// Restarted by the container's init, not by starting a new container.
	recs, _ := l.rt.Records(l.cluster, l.host)
	if len(recs) != 1 || recs[0].Pid != init || parentPid(t, second.Pid) != init {
		t.Errorf("record %+v, want the same init %d, parent of pid %d", recs, init, second.Pid)
	}
}

func TestRestartNeverAfterKill(t *testing.T) {
	l := newLab(t)
	cfg := l.config("api-1", "sleep", "1000")
	cfg.Restart = spec.RestartNever
	s := l.supervise(cfg)
	first := s.events.next(t, model.StateRunning)
	if err := syscall.Kill(first.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := s.events.next(t, model.StateExited); e.ExitCode != 137 {
		t.Errorf("exit event %+v, want 137", e)
	}
	if err := s.wait(t); err != nil {
		t.Errorf("Supervise: %v", err)
	}
	for _, e := range s.events.all() {
		if e.State == model.StateStarting && e.Restarts > 0 || e.State == model.StateBackoff {
			t.Errorf("policy never restarted: %+v", e)
		}
	}
}

func TestCancelLeavesProcessAndSuperviseAdoptsIt(t *testing.T) {
	l := newLab(t)
	cfg := l.config("db-1", "sleep", "1000")
	cfg.ResolvConf = "nameserver 10.10.0.1\n"
	first := l.supervise(cfg)
	pid := first.events.next(t, model.StateRunning).Pid
	start, err := procStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	first.cancel()
	if err := first.wait(t); err != nil {
		t.Fatalf("Supervise after cancel: %v", err)
	}
	if got, err := procStartTime(pid); err != nil || got != start {
		t.Fatalf("process %d did not survive the cancelled Supervise: %v", pid, err)
	}

	// The files are refreshed on adoption, in place: a running container sees them.
	cfg.ResolvConf = "nameserver 10.10.0.2 # refreshed\n"
	second := l.supervise(cfg)
	adopted := second.events.next(t, model.StateRunning)
	if !adopted.Adopted || adopted.Pid != pid {
		t.Fatalf("second Supervise: %+v, want pid %d adopted", adopted, pid)
	}
	for _, e := range second.events.all() {
		if e.State == model.StateStarting {
			t.Fatalf("adopting Supervise started a process: %+v", e)
		}
	}
	cat := ExecCommand(context.Background(), pid, []string{"cat", "/etc/resolv.conf"})
	if out, err := cat.Output(); err != nil || !strings.Contains(string(out), "# refreshed") {
		t.Errorf("resolv.conf inside after adoption: %q, %v", out, err)
	}

	// The adopted process is still this test's child: its exit code is known.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := second.events.next(t, model.StateBackoff); e.ExitCode != 137 {
		t.Errorf("adopted process exit %+v, want 137", e)
	}
	if e := second.events.next(t, model.StateRunning); e.Pid == pid || e.Restarts != 1 {
		t.Errorf("restart of adopted process: %+v", e)
	}
}

func TestProcessSurvivesAgentDeathAndIsAdopted(t *testing.T) {
	l := newLab(t)
	cfg := l.config("kv-1", "sleep", "1000")
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A separate agent process: its death must not take the container along.
	agent := exec.Command(initExe, "supervise", string(cfgJSON), l.rt.StateRoot)
	stdout, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Kill()
		_ = agent.Wait()
	})
	var pid int
	if _, err := fmt.Fscanf(stdout, "running %d\n", &pid); err != nil {
		t.Fatalf("reading the agent's container pid: %v", err)
	}
	start, err := procStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = agent.Wait()
	if got, err := procStartTime(pid); err != nil || got != start {
		t.Fatalf("container pid %d died with its agent: %v", pid, err)
	}

	s := l.supervise(cfg)
	adopted := s.events.next(t, model.StateRunning)
	if !adopted.Adopted || adopted.Pid != pid {
		t.Fatalf("new agent: %+v, want pid %d adopted", adopted, pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Reaped by the container's init, which records the exit code even
	// though the process was started under another agent.
	if e := s.events.next(t, model.StateBackoff); e.Pid != pid || e.ExitCode != 137 {
		t.Errorf("exit of adopted process: %+v, want pid %d code 137", e, pid)
	}
	if e := s.events.next(t, model.StateRunning); e.Adopted || e.Restarts != 1 {
		t.Errorf("restart after adopted exit: %+v", e)
	}
}

func TestSuperviseLeavesNoGoroutines(t *testing.T) {
	l := newLab(t)
	before := goruntime.NumGoroutine()
	s := l.supervise(l.config("leak-1", "sh", "-c", "exit 1"))
	s.events.next(t, model.StateBackoff)
	s.events.next(t, model.StateRunning) // restarted at least once
	s.cancel()
	if err := s.wait(t); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "goroutines to return to the count before Supervise", func() bool {
		return goruntime.NumGoroutine() <= before
	})
}

func TestChangedHashIsNotAdopted(t *testing.T) {
	l := newLab(t)
	cfg := l.config("cache-1", "sh", "-c", `trap "exit 0" TERM; sleep 1000 & wait`)
	first := l.supervise(cfg)
	oldPid := first.events.next(t, model.StateRunning).Pid
	first.cancel()
	if err := first.wait(t); err != nil {
		t.Fatal(err)
	}

	cfg.Env = map[string]string{"VERSION": "2"}
	second := l.supervise(cfg)
	e := second.events.next(t, model.StateRunning)
	if e.Adopted || e.Pid == oldPid {
		t.Fatalf("changed config: %+v, want a new process instead of pid %d", e, oldPid)
	}
	waitFor(t, "the old process to be stopped", gone(oldPid))
	newNS := inode(t, fmt.Sprintf("/proc/%d/ns/pid", e.Pid))
	pids := l.cgroupPids("cache-1")
	for _, p := range pids {
		if ns, err := os.Stat(fmt.Sprintf("/proc/%d/ns/pid", p)); err == nil && ns.Sys().(*syscall.Stat_t).Ino != newNS {
			t.Errorf("cgroup holds pid %d from outside the new container (pids %v)", p, pids)
		}
	}
	if !slices.Contains(pids, e.Pid) {
		t.Errorf("cgroup holds %v, not the new container's pid %d", pids, e.Pid)
	}
}

func TestRecreatedNetnsIsNotAdopted(t *testing.T) {
	l := newLab(t)
	cfg := l.config("dns-1", "sh", "-c", `trap "exit 0" TERM; sleep 1000 & wait`)
	first := l.supervise(cfg)
	oldPid := first.events.next(t, model.StateRunning).Pid
	first.cancel()
	if err := first.wait(t); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"netns", "del", cfg.Netns}, {"netns", "add", cfg.Netns}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	second := l.supervise(cfg)
	e := second.events.next(t, model.StateRunning)
	if e.Adopted || e.Pid == oldPid {
		t.Fatalf("recreated netns: %+v, want a new process instead of pid %d", e, oldPid)
	}
	waitFor(t, "the old process to be stopped", gone(oldPid))
	if got, want := inode(t, fmt.Sprintf("/proc/%d/ns/net", e.Pid)), inode(t, "/run/netns/"+cfg.Netns); got != want {
		t.Errorf("new process in netns %d, want the recreated %d", got, want)
	}
}

func TestStopWithoutSupervise(t *testing.T) {
	l := newLab(t)
	cfg := l.config("orphan-1", "sh", "-c", "sleep 1000 & wait")
	s := l.supervise(cfg)
	pid := s.events.next(t, model.StateRunning).Pid
	s.cancel()
	if err := s.wait(t); err != nil {
		t.Fatal(err)
	}
	if err := l.rt.Stop(context.Background(), l.cluster, l.host, "orphan-1", 100*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	// No zombie either: Stop reaps a child nobody else waits for.
	if !gone(pid)() {
		t.Errorf("pid %d still exists after Stop", pid)
	}
	if pids := l.cgroupPids("orphan-1"); len(pids) != 0 {
		t.Errorf("cgroup holds %v after Stop", pids)
	}
	if recs, _ := l.rt.Records(l.cluster, l.host); len(recs) != 0 {
		t.Errorf("records after Stop: %+v", recs)
	}
}

func TestExecCommand(t *testing.T) {
	l := newLab(t)
	cfg := l.config("shell-1", "sleep", "1000")
	cfg.Env = map[string]string{"WHERE": "inside"}
	s := l.supervise(cfg)
	pid := s.events.next(t, model.StateRunning).Pid
	ctx := context.Background()

	out, err := ExecCommand(ctx, pid, []string{"readlink", "/proc/self/ns/net"}).Output()
	if err != nil {
		t.Fatalf("exec readlink: %v", err)
	}
	if want := fmt.Sprintf("net:[%d]", inode(t, "/run/netns/"+cfg.Netns)); strings.TrimSpace(string(out)) != want {
		t.Errorf("exec sees netns %q, want %q", out, want)
	}
	out, err = ExecCommand(ctx, pid, []string{"sh", "-c", `echo "[$WHERE] $(pwd) $(id -u)"; ps -o pid= -p 1 >/dev/null; tr '\0' ' ' </proc/1/cmdline; echo; cat /proc/[0-9]*/cmdline | tr '\0' ' '`}).Output()
	if err != nil {
		t.Fatalf("exec sh: %v", err)
	}
	// A clean environment: the container's variables are not inherited.
	if !strings.HasPrefix(string(out), "[] / 0\n") || !strings.Contains(string(out), "container-init \n") || !strings.Contains(string(out), "sleep 1000") {
		t.Errorf("exec output %q, want a clean env, /, root, its pid 1 being container-init and sleep running", out)
	}
	err = ExecCommand(ctx, pid, []string{"sh", "-c", "exit 7"}).Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 7 {
		t.Errorf("exec exit: %v, want status 7", err)
	}

	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	started := time.Now()
	if err := ExecCommand(cctx, pid, []string{"sleep", "29.7071"}).Run(); err == nil {
		t.Error("cancelled exec succeeded")
	}
	if took := time.Since(started); took > 5*time.Second {
		t.Errorf("cancelled exec took %s", took)
	}
	waitFor(t, "the cancelled exec's sleep to die", func() bool {
		out, _ := exec.Command("pgrep", "-x", "-f", "sleep 29.7071").Output()
		return len(bytes.TrimSpace(out)) == 0
	})
}

func TestConcurrentStopAndRestarts(t *testing.T) {
	l := newLab(t)
	// Exits at once: Supervise keeps cycling through start and backoff,
	// so Stop lands at any point of the cycle.
	s := l.supervise(l.config("flappy-1", "false"))
	s.events.next(t, model.StateBackoff)
	if err := l.rt.Stop(context.Background(), l.cluster, l.host, "flappy-1", time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.wait(t); err != nil {
		t.Errorf("Supervise: %v", err)
	}
	if pids := l.cgroupPids("flappy-1"); len(pids) != 0 {
		t.Errorf("cgroup holds %v after Stop", pids)
	}
}

// parentPid is the parent of pid, from /proc/<pid>/stat.
func parentPid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("reading stat of %d: %v", pid, err)
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatalf("stat of %d: %q", pid, b)
	}
	return ppid
}

// workloadOf reads the container's workload record as container-init
// wrote it.
func (l *lab) workloadOf(container string) workloadState {
	l.t.Helper()
	st, err := readWorkload(l.rt.dir(l.cluster, l.host, container))
	if err != nil {
		l.t.Fatalf("reading the workload record of %s: %v", container, err)
	}
	return st
}

func TestWorkloadRestartedWithoutAgent(t *testing.T) {
	l := newLab(t)
	cfg := l.config("kv-1", "sh", "-c", "echo started; exec sleep 1000")
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A separate agent process, killed with SIGKILL as a crashing agent is.
	agent := exec.Command(initExe, "supervise", string(cfgJSON), l.rt.StateRoot)
	stdout, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Kill()
		_ = agent.Wait()
	})
	var pid int
	if _, err := fmt.Fscanf(stdout, "running %d\n", &pid); err != nil {
		t.Fatalf("reading the agent's container pid: %v", err)
	}
	if err := agent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = agent.Wait()

	waitFor(t, "the workload's output", l.logContains("kv-1", "started\n"))

	// No agent and no Supervise anywhere: the container's init restarts it.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var st workloadState
	waitFor(t, "the workload to be restarted without an agent", func() bool {
		st = l.workloadOf("kv-1")
		return st.State == model.StateRunning && st.Pid != pid && st.Pid > 0
	})
	if st.Restarts != 1 || st.LastPid != pid || st.LastExit != 137 {
		t.Errorf("workload record %+v, want restarts 1 after pid %d exited 137", st, pid)
	}
	if got, err := procStartTime(st.Pid); err != nil || got != st.StartTime {
		t.Errorf("recorded pid %d start time %d, /proc says %d (%v)", st.Pid, st.StartTime, got, err)
	}
	waitFor(t, "the restarted workload's output in the same log", func() bool {
		return strings.Count(l.log("kv-1"), "started\n") >= 2
	})
	if n := strings.Count(l.log("kv-1"), "started\n"); n != 2 {
		t.Errorf("the workload started %d times, want 2; log:\n%s", n, l.log("kv-1"))
	}

	// A new agent adopts the restarted workload as it is.
	s := l.supervise(cfg)
	adopted := s.events.next(t, model.StateRunning)
	if !adopted.Adopted || adopted.Pid != st.Pid || adopted.Restarts != 1 {
		t.Fatalf("new agent: %+v, want pid %d adopted with 1 restart", adopted, st.Pid)
	}
	for _, e := range s.events.all() {
		if e.State == model.StateStarting || e.State == model.StateBackoff {
			t.Errorf("adopting a restarted workload reported %+v", e)
		}
	}
	// And goes on following its restarts.
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := s.events.next(t, model.StateBackoff); e.Pid != st.Pid || e.ExitCode != 137 || e.Restarts != 1 {
		t.Errorf("backoff after the second kill: %+v, want pid %d exit 137 restarts 1", e, st.Pid)
	}
	if e := s.events.next(t, model.StateRunning); e.Adopted || e.Restarts != 2 || e.Pid == st.Pid {
		t.Errorf("running after the second kill: %+v, want a new pid with 2 restarts", e)
	}
}

func TestStopEndsRestartsWhileInitWaits(t *testing.T) {
	l := newLab(t)
	// on-failure: the init keeps restarting a failing workload; Stop without
	// any Supervise must still end the container for good.
	cfg := l.config("crash-1", "sh", "-c", "sleep 0.05; exit 4")
	cfg.Restart = spec.RestartOnFailure
	s := l.supervise(cfg)
	s.events.next(t, model.StateBackoff)
	s.cancel()
	if err := s.wait(t); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the init to restart the failing workload on its own", func() bool {
		return l.workloadOf("crash-1").Restarts >= 2
	})
	if err := l.rt.Stop(context.Background(), l.cluster, l.host, "crash-1", time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if pids := l.cgroupPids("crash-1"); len(pids) != 0 {
		t.Errorf("cgroup holds %v after Stop", pids)
	}
	if _, err := readWorkload(l.rt.dir(l.cluster, l.host, "crash-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("workload record after Stop: %v, want none", err)
	}
}

// nsPid is pid as its own PID namespace numbers it (the last NSpid field).
func nsPid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil || len(f) < 2 {
				t.Fatalf("NSpid of %d: %q", pid, line)
			}
			return n
		}
	}
	t.Fatalf("no NSpid in status of %d", pid)
	return 0
}

func TestLegacyRecordIsAdoptedThenRestartedUnderInit(t *testing.T) {
	l := newLab(t)
	cfg := l.config("old-1", "sleep", "1000")
	// A container started by an older weft: its recorded process is the
	// workload itself, and no workload record exists.
	old := exec.Command("ip", "netns", "exec", cfg.Netns, "sleep", "1000")
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old workload to exec sleep", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", old.Process.Pid))
		return strings.HasPrefix(string(b), "sleep")
	})
	t.Cleanup(func() { _ = old.Process.Kill() })
	pid := old.Process.Pid
	if err := cgroup.Join(cgroupPath(l.cluster, l.host, "old-1"), pid); err != nil {
		t.Fatal(err)
	}
	start, err := procStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	dir := l.rt.dir(l.cluster, l.host, "old-1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(dir, Record{Container: "old-1", Service: "svc", Hash: cfg.Hash(), Pid: pid, StartTime: start, Started: time.Now(), Restarts: 4}); err != nil {
		t.Fatal(err)
	}

	s := l.supervise(cfg)
	if e := s.events.next(t, model.StateRunning); !e.Adopted || e.Pid != pid || e.Restarts != 4 {
		t.Fatalf("adopting a legacy record: %+v, want pid %d adopted with 4 restarts", e, pid)
	}
	if err := old.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = old.Wait() }()
	if e := s.events.next(t, model.StateBackoff); e.Pid != pid {
		t.Errorf("exit of the legacy process: %+v, want pid %d", e, pid)
	}
	e := s.events.next(t, model.StateRunning)
	if e.Adopted || e.Restarts != 5 {
		t.Fatalf("restart of the legacy container: %+v, want a fresh start with 5 restarts", e)
	}
	if recs, _ := l.rt.Records(l.cluster, l.host); len(recs) != 1 || !recs[0].InitSupervises || recs[0].Pid != parentPid(t, e.Pid) {
		t.Errorf("record after the restart: %+v, want container-init, parent of %d", recs, e.Pid)
	}
}
