package runtime

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/logrotate"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
)

// statusFields reads the named fields of /proc/<pid>/status.
func statusFields(t *testing.T, pid int, names ...string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading status of %d: %v", pid, err)
	}
	return pickStatus(string(b), names...)
}

func pickStatus(status string, names ...string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, n := range names {
			if k == n {
				out[n] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// confinedStatus is what /proc/<pid>/status shows of a confined process.
func confinedStatus(root bool) map[string]string {
	eff := "0000000000000000"
	if root {
		eff = fmt.Sprintf("%016x", capMask(DefaultCapabilities))
	}
	return map[string]string{
		"CapEff": eff, "CapPrm": eff, "CapInh": "0000000000000000", "CapAmb": "0000000000000000",
		"CapBnd": fmt.Sprintf("%016x", capMask(DefaultCapabilities)), "NoNewPrivs": "1", "Seccomp": "2",
	}
}

var confinedFields = []string{"CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd", "NoNewPrivs", "Seccomp"}

func checkStatus(t *testing.T, who string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", who, k, got[k], v)
		}
	}
}

// TestPrivateRootAndConfinement: the container sees only its private root
// (not the state root with the agent socket, not /run/netns), the system
// directories read-only, its volume and tmpfs writable; it runs with the
// default capabilities, no_new_privs and the seccomp filter, in new IPC
// and cgroup namespaces.
func TestPrivateRootAndConfinement(t *testing.T) {
	l := newLab(t)
	// A stand-in for the agent's socket in the state root.
	sock := filepath.Join(naming.HostStateDir(l.rt.stateRoot(), l.cluster, l.host), "agent.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	vol := filepath.Join(t.TempDir(), "vol")

	cfg := l.config("iso-1", "sh", "-c", `
		for p in `+sock+` `+l.rt.stateRoot()+` /run/netns /var/lib/weft /root /home; do
			if [ -e "$p" ]; then echo "visible $p"; fi
		done
		for d in / /usr /etc /bin/ /lib/ /proc/sys; do
			if touch "$d/weft-probe" 2>/dev/null; then echo "writable $d"; fi
		done
		for d in /tmp /var/tmp /run /dev/shm /data; do
			touch "$d/weft-probe" && echo "wrote $d"
		done
		test -c /dev/null && echo devnull
		cat /proc/1/environ >/dev/null 2>&1 && echo "init environ readable allowed"
		readlink /proc/1/exe >/dev/null 2>&1 && echo "init exe reachable allowed"
		unshare -U true 2>/dev/null && echo "unshare allowed"
		unshare -n true 2>/dev/null && echo "unshare net allowed"
		ls /dev/ | tr '\n' ' '; echo
		echo done; exec sleep 1000`)
	cfg.Volumes = []Mount{{HostPath: vol, Path: "/data"}}
	s := l.supervise(cfg)
	pid := s.events.next(t, model.StateRunning).Pid
	waitFor(t, "the checks to finish", l.logContains("iso-1", "done"))
	out := l.log("iso-1")
	for _, bad := range []string{"visible", "writable", "allowed"} {
		if strings.Contains(out, bad) {
			t.Errorf("container output has %q lines:\n%s", bad, out)
		}
	}
	for _, want := range []string{"wrote /tmp", "wrote /var/tmp", "wrote /run", "wrote /dev/shm", "wrote /data", "devnull"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(vol, "weft-probe")); err != nil {
		t.Errorf("the volume's file is not on the host: %v", err)
	}
	// The host paths the container was checked against do exist here.
	for _, p := range []string{sock, "/run/netns/" + cfg.Netns} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("host path %s should exist: %v", p, err)
		}
	}
	// pid is the workload after exec: sleep, as root.
	checkStatus(t, "workload", statusFields(t, pid, confinedFields...), confinedStatus(true))
	for _, ns := range []string{"ipc", "cgroup", "mnt", "pid", "uts"} {
		if inode(t, fmt.Sprintf("/proc/%d/ns/%s", pid, ns)) == inode(t, "/proc/self/ns/"+ns) {
			t.Errorf("container shares the test's %s namespace", ns)
		}
	}
	// The init keeps privileged threads for restarts (only the thread each
	// workload is forked from is confined, then thrown away).
	init := parentPid(t, pid)
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", init))
	free := 0
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", init, task.Name()))
		if err == nil && pickStatus(string(b), "Seccomp")["Seccomp"] == "0" {
			free++
		}
	}
	if free == 0 {
		t.Errorf("every thread of container-init (%d) is confined", len(tasks))
	}
	root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
	if err != nil || root != "/" {
		t.Errorf("workload root %q (%v)", root, err)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid)); err != nil || strings.Contains(string(b), " / / rw") {
		t.Errorf("workload's root is writable or unreadable (%v):\n%s", err, b)
	}
}

// TestNonRootUserConfinement: a `user:` container has no effective
// capabilities at all.
func TestNonRootUserConfinement(t *testing.T) {
	l := newLab(t)
	cfg := l.config("nobody-1", "sleep", "1000")
	cfg.User = "nobody"
	s := l.supervise(cfg)
	pid := s.events.next(t, model.StateRunning).Pid
	got := statusFields(t, pid, append(confinedFields, "Uid")...)
	checkStatus(t, "workload", got, confinedStatus(false))
	if !strings.HasPrefix(got["Uid"], "65534\t") {
		t.Errorf("workload Uid %q, want nobody (65534)", got["Uid"])
	}
}

// TestExecIsCleanAndConfined: `weft exec` does not inherit what the
// container put in its environment (LD_PRELOAD), runs as the container's
// user, inside its cgroup, with the same confinement as the workload.
func TestExecIsCleanAndConfined(t *testing.T) {
	l := newLab(t)
	cfg := l.config("exec-1", "sleep", "1000")
	cfg.User = "nobody"
	cfg.Env = map[string]string{"LD_PRELOAD": "/tmp/evil.so", "SECRET": "s3"}
	s := l.supervise(cfg)
	pid := s.events.next(t, model.StateRunning).Pid
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err != nil || !strings.Contains(string(env), "LD_PRELOAD=/tmp/evil.so") {
		t.Fatalf("the workload's environ lacks LD_PRELOAD (%v): %q", err, env)
	}
	out, err := ExecCommand(context.Background(), pid, []string{"sh", "-c",
		`echo "env=[$LD_PRELOAD][$SECRET] uid=$(id -u) path=$PATH"; grep -E '^(Cap(Eff|Prm|Inh|Amb|Bnd)|NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/self/cgroup`}).CombinedOutput()
	if err != nil {
		t.Fatalf("exec: %v: %s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "env=[][] uid=65534 path="+defaultPath+"\n") {
		t.Errorf("exec env/user wrong:\n%s", text)
	}
	checkStatus(t, "exec", pickStatus(text, confinedFields...), confinedStatus(false))
	// In the container's cgroup namespace, its own cgroup is "/": the
	// exec is in the container's pids cgroup, not the caller's.
	if !strings.Contains(text, ":pids:/\n") {
		t.Errorf("exec is not in the container's pids cgroup:\n%s", text)
	}
	// While it runs, the host sees it among the container's processes.
	cg := cgroupPath(l.cluster, l.host, "exec-1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x := ExecCommand(ctx, pid, []string{"sleep", "31.4159"})
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the exec'd sleep to show in the container's cgroup", func() bool {
		pids, _ := cgroup.Pids(cg)
		for _, p := range pids {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); strings.Contains(string(b), "31.4159") {
				return true
			}
		}
		return false
	})
	cancel()
	_ = x.Wait()
}

// TestMemoryLimitOOMKillsAndRestarts: a workload past its memory limit is
// killed by the kernel's OOM killer and restarted by its init.
func TestMemoryLimitOOMKillsAndRestarts(t *testing.T) {
	l := newLab(t)
	// tail buffers /dev/zero looking for a newline that never comes.
	cfg := l.config("hog-1", "sh", "-c", "echo started; exec tail /dev/zero")
	cfg.Resources = Resources{MemoryBytes: 32 << 20, Pids: 64}
	s := l.supervise(cfg)
	s.events.next(t, model.StateRunning)
	cg := cgroupPath(l.cluster, l.host, "hog-1")
	limit, err := os.ReadFile(filepath.Join(cgroup.Root, cgroup.Memory, cg, "memory.limit_in_bytes"))
	if err != nil || strings.TrimSpace(string(limit)) != strconv.Itoa(32<<20) {
		t.Fatalf("memory.limit_in_bytes = %q (%v), want %d", limit, err, 32<<20)
	}
	backoff := s.events.next(t, model.StateBackoff)
	if backoff.ExitCode != 137 {
		t.Errorf("the hog ended with %d, want 137 (SIGKILL by the OOM killer)", backoff.ExitCode)
	}
	oom, _ := os.ReadFile(filepath.Join(cgroup.Root, cgroup.Memory, cg, "memory.oom_control"))
	if kills := pickOOMKills(string(oom)); kills < 1 {
		t.Errorf("memory.oom_control shows no OOM kill:\n%s", oom)
	}
	if again := s.events.next(t, model.StateRunning); again.Restarts < 1 {
		t.Errorf("after the OOM kill: %+v, want a restart", again)
	}
}

func pickOOMKills(oomControl string) int {
	for line := range strings.SplitSeq(oomControl, "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// TestForkBombStopsAtPidsMax: a workload forking without end is held at
// its pids limit; the container and its host keep working.
func TestForkBombStopsAtPidsMax(t *testing.T) {
	l := newLab(t)
	const max = 40
	cfg := l.config("bomb-1", "sh", "-c", `i=0; while [ $i -lt 400 ]; do sleep 1000 & i=$((i+1)); done; echo "forked them all"`)
	cfg.Resources = Resources{Pids: max}
	s := l.supervise(cfg)
	s.events.next(t, model.StateRunning)
	// The shell gives up at the first refused fork.
	waitFor(t, "a fork to be refused", l.logContains("bomb-1", "Cannot fork"))
	if strings.Contains(l.log("bomb-1"), "forked them all") {
		t.Errorf("400 processes were forked under pids.max %d", max)
	}
	cg := cgroupPath(l.cluster, l.host, "bomb-1")
	if pids := l.cgroupPids("bomb-1"); len(pids) > max {
		t.Errorf("%d processes in the container, over pids.max %d", len(pids), max)
	}
	events, err := os.ReadFile(filepath.Join(cgroup.Root, cgroup.Controller, cg, "pids.events"))
	if err != nil || !strings.HasPrefix(string(events), "max ") || strings.TrimSpace(string(events)) == "max 0" {
		t.Errorf("pids.events = %q (%v), want forks refused at the limit", events, err)
	}
	if err := l.rt.Stop(context.Background(), l.cluster, l.host, "bomb-1", time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if pids := l.cgroupPids("bomb-1"); len(pids) != 0 {
		t.Errorf("processes left after Stop: %v", pids)
	}
}

// TestProgramUnderTmpIsVisible: a program whose directory is below /tmp
// (a fresh tmpfs in the container) is still shown, read-only.
func TestProgramUnderTmpIsVisible(t *testing.T) {
	l := newLab(t)
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho \"ran from $0\"\ntouch $0.new 2>/dev/null && echo writable\nexec sleep 1000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := l.supervise(l.config("tmp-1", prog))
	s.events.next(t, model.StateRunning)
	waitFor(t, "the program to run", l.logContains("tmp-1", "ran from "+prog))
	if strings.Contains(l.log("tmp-1"), "writable") {
		t.Errorf("the program's directory is writable in the container:\n%s", l.log("tmp-1"))
	}
}

// TestContainerLogRotates: the container's output is capped per file and
// kept in the configured number of generations, with nothing lost in the
// kept ones.
func TestContainerLogRotates(t *testing.T) {
	l := newLab(t)
	cfg := l.config("chatty-1", "sh", "-c", `i=0; while [ $i -lt 300 ]; do echo "line $i padding-padding-padding"; i=$((i+1)); done; echo finished; exec sleep 1000`)
	cfg.Log = logrotate.Policy{MaxBytes: 2000, Keep: 2}
	s := l.supervise(cfg)
	s.events.next(t, model.StateRunning)
	path := l.rt.LogPath(l.cluster, l.host, "chatty-1")
	waitFor(t, "the last line", l.logContains("chatty-1", "finished"))
	var all string
	for _, p := range []string{path + ".2", path + ".1", path} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("generation %s: %v", p, err)
		}
		if len(b) > 2000 {
			t.Errorf("%s holds %d bytes, over the cap 2000", p, len(b))
		}
		all += string(b)
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("a third generation was kept")
	}
	// The kept generations hold the newest lines, in order, none missing.
	lines := strings.Split(strings.TrimSpace(all), "\n")
	if lines[len(lines)-1] != "finished" {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	first, _ := strconv.Atoi(strings.Fields(lines[0])[1])
	for i, line := range lines[:len(lines)-1] {
		if want := fmt.Sprintf("line %d padding-padding-padding", first+i); line != want {
			t.Fatalf("line %d of the kept logs is %q, want %q", i, line, want)
		}
	}
}

// TestCPULimitThrottles: a busy loop under a CPU limit is throttled by the
// CFS quota.
func TestCPULimitThrottles(t *testing.T) {
	l := newLab(t)
	cfg := l.config("spin-1", "sh", "-c", "while :; do :; done")
	cfg.Resources = Resources{CPU: 0.05}
	s := l.supervise(cfg)
	s.events.next(t, model.StateRunning)
	stat := filepath.Join(cgroup.Root, cgroup.CPU, cgroupPath(l.cluster, l.host, "spin-1"), "cpu.stat")
	waitFor(t, "the spinning container to be throttled", func() bool {
		b, err := os.ReadFile(stat)
		if err != nil {
			return false
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "nr_throttled "); ok {
				n, _ := strconv.Atoi(v)
				return n >= 3
			}
		}
		return false
	})
	if err := l.rt.Stop(context.Background(), l.cluster, l.host, "spin-1", time.Second); err != nil {
		t.Fatal(err)
	}
}
