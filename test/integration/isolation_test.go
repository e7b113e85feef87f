package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/runtime"
)

const isolationTmpl = `version: 1
name: NAME
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a}
services:
  web:
    command: [HELLO, -listen, ":8080", -name, web]
    user: nobody
    env: {SECRET: s3, LD_PRELOAD: /tmp/planted.so}
    port: 8080
    # Healthy only when the probe runs clean (nothing of the container's
    # environment), as the container's user, confined.
    health:
      exec: [sh, -c, 'test -z "$SECRET" && test -z "$LD_PRELOAD" && test "$(id -u)" = 65534 && grep -q "^NoNewPrivs:.1" /proc/self/status && grep -q "^Seccomp:.2" /proc/self/status']
      interval: 200ms
`

// TestContainerIsolation: through a real agent, a container sees neither
// the agent's socket nor weft's state nor the lab's namespaces; exec health
// probes and weft exec run clean, as the container's user, confined. (That
// the container cannot reach etcd on its host's underlay address needs the
// host firewall, which isolation does not provide.)
func TestContainerIsolation(t *testing.T) {
	c := writeCluster(t, uniqueName("iso"), isolationTmpl)
	upCluster(t, c) // returns once web-1 is healthy: the exec probe passed
	sock := filepath.Join(naming.HostStateDir(naming.DefaultStateRoot, c.name, "host1"), "agent.sock")
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the agent's socket %s should exist on the host: %v", sock, err)
	}
	r := c.exec(t, "web-1", "sh", "-c", fmt.Sprintf(`
		for p in %s %s /var/lib/weft /run/netns; do test -e "$p" && echo "visible $p"; done
		touch /usr/probe 2>/dev/null && echo "writable /usr"
		echo "env=[$SECRET$LD_PRELOAD] uid=$(id -u)"
		grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
		wget -q -T 3 -O - http://127.0.0.1:8080/health >/dev/null && echo served`, sock, filepath.Dir(sock)))
	if r.code != 0 {
		t.Fatalf("weft exec: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	for _, bad := range []string{"visible", "writable"} {
		if strings.Contains(r.stdout, bad) {
			t.Errorf("inside web-1:\n%s", r.stdout)
		}
	}
	for _, want := range []string{"env=[] uid=65534", "CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2", "served"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("weft exec output lacks %q:\n%s", want, r.stdout)
		}
	}
}

const userNSTmpl = `version: 1
name: NAME
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a}
services:
  mapped:
    # Root, on port 80: a port below 1024 in a user namespace.
    command: [HELLO, -listen, ":80", -name, mapped]
    port: 80
    health: {tcp: 80, interval: 200ms}
    volumes: [{name: data, path: /data}]
  hostroot:
    command: [HELLO, -listen, ":8080", -name, hostroot]
    port: 8080
    userns: false
    health: {tcp: 8080, interval: 200ms}
`

// TestUserNamespaceThroughAgent: through a real agent, root in a container
// is an unprivileged host uid (the host's /proc/<pid>/uid_map and uid, the
// host owner of a file it writes in its volume); it serves on port 80; it
// cannot read a root-only host file it is shown, nor change a sysctl,
// nor make a user namespace; `weft exec` runs in the same map (and ping
// works: ICMP echo sockets for its mapped groups). A service
// with `userns: false` runs as host root (and reads that file).
func TestUserNamespaceThroughAgent(t *testing.T) {
	c := writeCluster(t, uniqueName("un"), userNSTmpl)
	// A root-only file in the directory of the program, which every
	// container of the cluster is shown read-only.
	secret := filepath.Join(filepath.Dir(helloBin), c.name+".secret")
	if err := os.WriteFile(secret, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(secret) })
	upCluster(t, c) // mapped-1 is healthy: it listens on :80
	m := runtime.ClusterIDMap(c.name)
	pids := map[string]int{}
	for _, s := range c.status(t).Containers {
		pids[s.Container] = s.Pid
	}
	hostView := func(container string) (string, string) {
		uidMap, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pids[container]))
		if err != nil {
			t.Fatalf("%s: %v", container, err)
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pids[container]))
		if err != nil {
			t.Fatalf("%s: %v", container, err)
		}
		uid := ""
		for line := range strings.SplitSeq(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				uid = strings.Fields(v)[0]
			}
		}
		return strings.Join(strings.Fields(string(uidMap)), " "), uid
	}
	if gotMap, uid := hostView("mapped-1"); gotMap != m.String() || uid != fmt.Sprint(m.HostBase) {
		t.Errorf("mapped-1 on the host: uid_map %q, uid %s; want %q, %d", gotMap, uid, m.String(), m.HostBase)
	}
	if gotMap, uid := hostView("hostroot-1"); gotMap != "0 0 4294967295" || uid != "0" {
		t.Errorf("hostroot-1 (userns: false) on the host: uid_map %q, uid %s; want the host's own, 0", gotMap, uid)
	}

	r := c.exec(t, "mapped-1", "sh", "-c", `
		echo "uid=$(id -u) map=$(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')"
		cat `+secret+` 2>/dev/null && echo "secret readable"
		sysctl -w net.ipv4.ip_forward=1 >/dev/null 2>&1 && echo "sysctl written"
		echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo "sysctl written"
		unshare -U true 2>/dev/null && echo "nested userns allowed"
		ping -c 1 -W 2 127.0.0.1 >/dev/null 2>&1 && echo pinged
		echo mine > /data/by-container && echo wrote`)
	if r.code != 0 {
		t.Fatalf("weft exec: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	for _, bad := range []string{"secret readable", "sysctl written", "nested userns allowed"} {
		if strings.Contains(r.stdout, bad) {
			t.Errorf("inside mapped-1: %q:\n%s", bad, r.stdout)
		}
	}
	for _, want := range []string{"uid=0 map=" + m.String(), "pinged", "wrote"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("weft exec output lacks %q:\n%s", want, r.stdout)
		}
	}
	var st syscall.Stat_t
	file := filepath.Join(naming.VolumeDir(naming.DefaultStateRoot, c.name, "mapped-1", "data"), "by-container")
	if err := syscall.Stat(file, &st); err != nil {
		t.Fatalf("the container's file on the host: %v", err)
	}
	if st.Uid != m.HostBase || st.Gid != m.HostBase {
		t.Errorf("%s is owned by %d:%d on the host, want %d:%d (the mapped root)", file, st.Uid, st.Gid, m.HostBase, m.HostBase)
	}
	// The same file is readable to host root: the check above can fail.
	if r := c.exec(t, "hostroot-1", "cat", secret); r.code != 0 || !strings.Contains(r.stdout, "host secret") {
		t.Errorf("hostroot-1 (userns: false) should read the root-only file: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}
