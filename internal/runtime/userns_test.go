package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/weft-dev/weft/internal/model"
)

// TestUserNamespace: with a user namespace, root in the container is an
// unprivileged host uid (its uid_map, its host uid, the host owner of a
// file it writes in its volume); it keeps its capability set only inside,
// so a root-only host file it can see stays unreadable (a container
// without a user namespace reads the same file), host sysctls stay
// unwritable and nested user namespaces are refused; it binds port 80,
// owns its /tmp and /run; `weft exec` enters with the same map, as the
// workload's user; a `user:` maps too.
func TestUserNamespace(t *testing.T) {
	l := newLab(t)
	m := ClusterIDMap(l.cluster)
	// A root-only file in a directory the container is shown (its workdir).
	shown := t.TempDir()
	if err := os.Chmod(shown, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(shown, "secret")
	if err := os.WriteFile(secret, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `
		cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //' | sed 's/^/map: /'
		echo "id: $(id -u):$(id -g)"
		cat ` + secret + ` 2>/dev/null && echo "secret readable"
		echo 1 > /proc/sys/net/ipv4/ip_forward 2>/dev/null && echo "sysctl writable"
		unshare -U true 2>/dev/null && echo "nested userns allowed"
		perl -MIO::Socket::INET -e 'IO::Socket::INET->new(LocalPort=>80, Listen=>1, ReuseAddr=>1) or die "bind 80: $!\n"; print "bound 80\n"'
		for d in /tmp /run /data; do touch "$d/weft-probe" && echo "wrote $d"; done
		echo done; exec sleep 1000`
	cfg := l.config("un-1", "sh", "-c", script)
	cfg.Workdir = shown
	cfg.UserNS = m
	vol := filepath.Join(t.TempDir(), "vol")
	cfg.Volumes = []Mount{{HostPath: vol, Path: "/data"}}
	s := l.supervise(cfg)
	pid := s.events.next(t, model.StateRunning).Pid
	waitFor(t, "the checks to finish", l.logContains("un-1", "done"))
	out := l.log("un-1")
	for _, bad := range []string{"secret readable", "sysctl writable", "nested userns allowed", "weft: "} {
		if strings.Contains(out, bad) {
			t.Errorf("container output has %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{"map: " + m.String(), "id: 0:0", "bound 80", "wrote /tmp", "wrote /run", "wrote /data"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	// The host's view: the workload's map and uid, and the owner of the
	// file it wrote.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := parseIDMap(strings.TrimSpace(string(b))); err != nil || got != m {
		t.Errorf("host /proc/%d/uid_map = %q (%v), want %s", pid, b, err, m)
	}
	host := strconv.Itoa(int(m.HostBase))
	if got := statusFields(t, pid, "Uid")["Uid"]; strings.Fields(got)[0] != host {
		t.Errorf("workload's host uid = %q, want %s", got, host)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(vol, "weft-probe"), &st); err != nil {
		t.Fatalf("the volume's file is not on the host: %v", err)
	}
	if st.Uid != m.HostBase || st.Gid != m.HostBase {
		t.Errorf("the container's file is owned by %d:%d on the host, want %d:%d", st.Uid, st.Gid, m.HostBase, m.HostBase)
	}
	checkStatus(t, "workload", statusFields(t, pid, confinedFields...), confinedStatus(true))

	// exec: same map, same user, confined.
	x := ExecCommand(context.Background(), pid, []string{"sh", "-c", "id -u; cat /proc/self/uid_map; grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status; cat " + secret + " 2>/dev/null && echo secret readable; true"})
	xo, err := x.CombinedOutput()
	if err != nil {
		t.Fatalf("exec: %v: %s", err, xo)
	}
	xs := strings.Join(strings.Fields(string(xo)), " ")
	want := fmt.Sprintf("0 0 %d %d CapEff: %016x NoNewPrivs: 1 Seccomp: 2", m.HostBase, m.Size, capMask(DefaultCapabilities))
	if !strings.HasPrefix(xs, want) || strings.Contains(xs, "secret readable") {
		t.Errorf("exec output %q, want it to begin with %q and not read the secret", xs, want)
	}

	// The same file, from a container without a user namespace: readable
	// (CAP_DAC_OVERRIDE of host root), so the check above can fail.
	plain := l.config("un-2", "sh", "-c", "cat "+secret+"; echo done; exec sleep 1000")
	plain.Workdir = shown
	l.supervise(plain)
	waitFor(t, "the plain container", l.logContains("un-2", "done"))
	if !strings.Contains(l.log("un-2"), "host secret") {
		t.Errorf("without a user namespace the secret should be readable:\n%s", l.log("un-2"))
	}

	// A user: the map applies to it; exec takes it on.
	u := l.config("un-3", "sh", "-c", "echo id: $(id -u):$(id -g); echo done; exec sleep 1000")
	u.User = "1000:1000"
	u.UserNS = m
	s3 := l.supervise(u)
	pid3 := s3.events.next(t, model.StateRunning).Pid
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("un-3's log:\n%s", l.log("un-3"))
		}
	})
	waitFor(t, "the user's container", l.logContains("un-3", "done"))
	if !strings.Contains(l.log("un-3"), "id: 1000:1000\n") {
		t.Errorf("user 1000 container:\n%s", l.log("un-3"))
	}
	if got := strings.Fields(statusFields(t, pid3, "Uid")["Uid"])[0]; got != strconv.Itoa(int(m.HostBase)+1000) {
		t.Errorf("user 1000's host uid = %s, want %d", got, m.HostBase+1000)
	}
	checkStatus(t, "user 1000's workload", statusFields(t, pid3, confinedFields...), confinedStatus(false))
	xo, err = ExecCommand(context.Background(), pid3, []string{"id", "-u"}).CombinedOutput()
	if err != nil || strings.TrimSpace(string(xo)) != "1000" {
		t.Errorf("exec in the user's container: %q, %v; want 1000", xo, err)
	}
}
