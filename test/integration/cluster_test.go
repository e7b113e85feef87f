package integration

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
)

const exampleTmpl = `version: 1
name: NAME
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24, c: 192.168.3.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a}
  - {name: host2, subnet: b}
  - {name: host3, subnet: c}
services:
  api:
    command: [HELLO, -listen, ":8080", -name, api]
    host: host1
    ip: 10.10.0.5
    port: 8080
    depends_on: [store]
    health: {http: /health, interval: 200ms}
  store:
    command: [HELLO, -listen, ":8080", -name, store]
    host: STOREHOST
    ip: 10.10.0.9
    port: 8080
    health: {http: /health, interval: 200ms}
  web:
    command: [HELLO, -listen, ":8080", -name, web]
    replicas: WEBREPLICAS
    port: 8080
    health: {http: /health, interval: 200ms}
EXTRA`

const extraService = `  extra:
    command: [HELLO, -listen, ":8080", -name, extra]
    host: host2
    port: 8080
    health: {http: /health, interval: 200ms}
`

func exampleFile(storeHost string, webReplicas int, extra bool) string {
	x := ""
	if extra {
		x = extraService
	}
	return strings.NewReplacer("STOREHOST", storeHost, "WEBREPLICAS", fmt.Sprint(webReplicas), "EXTRA", x).Replace(exampleTmpl)
}

// TestExampleCluster walks the platform's promises on one three-host
// cluster, in order: reachability, no flooding, MTU, re-apply, container
// restart, agent death, container death while its agent is dead, change of
// file; and a second cluster beside it.
func TestExampleCluster(t *testing.T) {
	c := writeCluster(t, uniqueName("ex"), exampleFile("host3", 3, true))
	upCluster(t, c)
	st := c.status(t)
	if len(st.Containers) != 6 {
		t.Fatalf("want 6 containers, got %d", len(st.Containers))
	}
	hostsUsed := map[string]bool{}
	for _, ct := range st.Containers {
		hostsUsed[ct.Host] = true
	}
	if len(hostsUsed) != 3 {
		t.Fatalf("every host should run containers, got %v", hostsUsed)
	}

	t.Run("reach every container by name and address", func(t *testing.T) { checkReachability(t, c) })
	t.Run("no broadcast or unknown unicast crosses the underlay", func(t *testing.T) { checkNoFlooding(t, c) })
	t.Run("MTU", func(t *testing.T) { checkMTU(t, c) })
	t.Run("re-apply changes nothing", func(t *testing.T) { checkReapply(t, c) })
	t.Run("kill -9 of a container", func(t *testing.T) { checkContainerRestart(t, c) })
	t.Run("kill -9 of a manager agent", func(t *testing.T) { checkAgentDeath(t, c) })
	t.Run("kill -9 of a container while its agent is dead", func(t *testing.T) { checkContainerDeathWithoutAgent(t, c) })
	t.Run("changing the file converges", func(t *testing.T) { checkChange(t, c) })
}

func readyContainers(st api.Status) []model.ContainerStatus {
	var out []model.ContainerStatus
	for _, ct := range st.Containers {
		if ct.Ready() {
			out = append(out, ct)
		}
	}
	return out
}

func checkReachability(t *testing.T, c cluster) {
	st := c.status(t)
	cs := readyContainers(st)
	if len(cs) != len(st.Containers) {
		t.Fatalf("not all containers ready: %+v", st.Containers)
	}
	for _, from := range cs {
		for _, to := range cs {
			for _, target := range []string{to.Container, to.IP.String()} {
				r := c.exec(t, from.Container, "wget", "-q", "-T", "3", "-O", "-", "http://"+target+":8080/health")
				var h struct{ Status, Service string }
				if r.code != 0 || jsonUnmarshal(r.stdout, &h) != nil || h.Status != "ok" || h.Service != to.Service {
					t.Errorf("%s (%s) -> %s (%s): exit %d %s %s", from.Container, from.Host, target, to.Host, r.code, r.stdout, r.stderr)
				}
			}
		}
		// A service name answers with the healthy replicas.
		r := c.exec(t, from.Container, "wget", "-q", "-T", "3", "-O", "-", "http://web:8080/health")
		if r.code != 0 {
			t.Errorf("%s -> web (service name): exit %d %s", from.Container, r.code, r.stderr)
		}
	}
}

func checkMTU(t *testing.T, c cluster) {
	st := c.status(t)
	api, store := find(t, st, "api-1"), find(t, st, "store-1")
	if api.Host == store.Host {
		t.Fatalf("api and store must be on different hosts")
	}
	const overlayMTU = 1450
	payload := overlayMTU - 28
	r := c.exec(t, "api-1", "ping", "-M", "do", "-c", "1", "-W", "2", "-s", fmt.Sprint(payload), store.IP.String())
	if r.code != 0 {
		t.Fatalf("DF ping with payload %d should cross hosts: %s%s", payload, r.stdout, r.stderr)
	}
	r = c.exec(t, "api-1", "ping", "-M", "do", "-c", "1", "-W", "2", "-s", fmt.Sprint(payload+1), store.IP.String())
	if r.code == 0 {
		t.Fatalf("DF ping with payload %d should fail at the sender", payload+1)
	}
	if !strings.Contains(r.stdout+r.stderr, "mtu") && !strings.Contains(r.stdout+r.stderr, "too long") {
		t.Fatalf("DF ping should fail locally (message too long / mtu), got: %s%s", r.stdout, r.stderr)
	}
	// 10 MB across hosts, compared with the same bytes read locally.
	const size = 10 << 20
	remote := c.exec(t, "api-1", "sh", "-c", fmt.Sprintf("wget -q -O - 'http://store:8080/blob?size=%d' | sha256sum; wget -q -O - 'http://store:8080/blob?size=%d' | wc -c", size, size))
	local := c.exec(t, "store-1", "sh", "-c", fmt.Sprintf("wget -q -O - 'http://127.0.0.1:8080/blob?size=%d' | sha256sum", size))
	if remote.code != 0 || local.code != 0 {
		t.Fatalf("transfer failed: %s %s", remote.stderr, local.stderr)
	}
	lines := strings.Split(strings.TrimSpace(remote.stdout), "\n")
	if len(lines) != 2 || strings.TrimSpace(lines[1]) != fmt.Sprint(size) {
		t.Fatalf("want %d bytes, got %q", size, remote.stdout)
	}
	if strings.Fields(lines[0])[0] != strings.Fields(local.stdout)[0] {
		t.Fatalf("checksum across hosts %s != local %s", lines[0], local.stdout)
	}
	var zero [32]byte
	if strings.Fields(lines[0])[0] == fmt.Sprintf("%x", sha256.Sum256(zero[:0])) {
		t.Fatalf("empty transfer")
	}
}

func find(t *testing.T, st api.Status, container string) model.ContainerStatus {
	t.Helper()
	for _, ct := range st.Containers {
		if ct.Container == container {
			return ct
		}
	}
	t.Fatalf("container %s not in status", container)
	return model.ContainerStatus{}
}

// kernelState is what must not change on re-apply.
type kernelState struct {
	pids     map[string]int
	ifindex  map[string]string // per host: `ip -o link` lines (index:name)
	fdb      map[string]string
	neighbor map[string]string
}

func captureKernel(t *testing.T, c cluster) kernelState {
	t.Helper()
	ks := kernelState{pids: map[string]int{}, ifindex: map[string]string{}, fdb: map[string]string{}, neighbor: map[string]string{}}
	for _, ct := range c.status(t).Containers {
		ks.pids[ct.Container] = ct.Pid
	}
	for _, h := range []string{"host1", "host2", "host3"} {
		ns := hostNetns(c, h)
		ks.ifindex[h] = run(t, inNetns(ns, "sh", "-c", "ip -o link | cut -d' ' -f1,2"))
		ks.fdb[h] = sortedLines(run(t, inNetns(ns, "bridge", "fdb", "show", "dev", "vxlan444")))
		ks.neighbor[h] = sortedLines(run(t, inNetns(ns, "ip", "neigh", "show", "dev", "vxlan444")))
	}
	return ks
}

func sortedLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

func checkReapply(t *testing.T, c cluster) {
	before := captureKernel(t, c)
	out := mustWeft(t, "up", "--json", "-f", c.file)
	var res struct {
		SpecChanged bool          `json:"spec_changed"`
		Changes     model.Changes `json:"changes"`
	}
	if err := jsonLastLine(out, &res); err != nil {
		t.Fatal(err)
	}
	if res.SpecChanged || res.Changes.Count() != 0 {
		t.Fatalf("second up should change nothing, got %+v", res)
	}
	after := captureKernel(t, c)
	for k, v := range before.pids {
		if after.pids[k] != v {
			t.Errorf("pid of %s changed %d -> %d", k, v, after.pids[k])
		}
	}
	for h := range before.ifindex {
		if before.ifindex[h] != after.ifindex[h] {
			t.Errorf("%s interfaces changed:\n%s\n---\n%s", h, before.ifindex[h], after.ifindex[h])
		}
		if before.fdb[h] != after.fdb[h] {
			t.Errorf("%s fdb changed:\n%s\n---\n%s", h, before.fdb[h], after.fdb[h])
		}
		if before.neighbor[h] != after.neighbor[h] {
			t.Errorf("%s neighbors changed", h)
		}
	}
}

func checkContainerRestart(t *testing.T, c cluster) {
	st := c.status(t)
	victim := find(t, st, "store-1")
	obs := newDNSObserver(t, hostNetns(c, "host1"), st, "store-1", victim.IP)
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var back model.ContainerStatus
	eventually(t, 2*time.Second, "store-1 healthy again with a new pid", func() error {
		back = find(t, c.status(t), "store-1")
		if back.Pid == victim.Pid || !back.Ready() {
			return fmt.Errorf("pid %d state %s health %s", back.Pid, back.State, back.Health)
		}
		return nil
	})
	t.Logf("store-1 back after %s", time.Since(killed).Round(time.Millisecond))
	if back.IP != victim.IP || back.MAC != victim.MAC {
		t.Fatalf("address changed: %s/%s -> %s/%s", victim.IP, victim.MAC, back.IP, back.MAC)
	}
	if back.Restarts < 1 {
		t.Fatalf("restarts not counted: %d", back.Restarts)
	}
	eventually(t, 2*time.Second, "DNS answers store-1 again", obs.answering)
	if !obs.sawGone() {
		t.Fatalf("DNS kept answering store-1 while it was down")
	}
}

// checkAgentDeath kills a manager's agent: its host supervisor starts a new
// one by itself (no weft up), which registers within 2s and adopts the
// host's containers without restarting them.
func checkAgentDeath(t *testing.T, c cluster) {
	st := c.status(t)
	host1 := findHost(t, st, "host1")
	if !host1.Manager || host1.AgentPid == 0 {
		t.Fatalf("host1 should be a manager with an agent: %+v", host1)
	}
	before := map[string]model.ContainerStatus{}
	for _, ct := range st.Containers {
		if ct.Host == "host1" {
			before[ct.Container] = ct
		}
	}
	if err := syscall.Kill(host1.AgentPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	eventually(t, 2*time.Second, "a new agent of host1 registered", func() error {
		h := findHost(t, c.status(t), "host1")
		if h.AgentPid == host1.AgentPid || h.Agent != "up" {
			return fmt.Errorf("agent %s pid %d", h.Agent, h.AgentPid)
		}
		return nil
	})
	t.Logf("host1's agent registered again %s after kill -9", time.Since(killed).Round(time.Millisecond))
	// The new agent adopts the containers: same pids, no restart, and it
	// reports them ready again (their health checks start over).
	eventually(t, 10*time.Second, "host1's containers adopted and ready", func() error {
		for _, ct := range c.status(t).Containers {
			old, ok := before[ct.Container]
			if !ok {
				continue
			}
			if ct.Pid != old.Pid || ct.Restarts != old.Restarts {
				t.Fatalf("%s restarted by the new agent: pid %d -> %d, restarts %d -> %d", ct.Container, old.Pid, ct.Pid, old.Restarts, ct.Restarts)
			}
			if !ct.Ready() {
				return fmt.Errorf("%s %s/%s", ct.Container, ct.State, ct.Health)
			}
		}
		return nil
	})
	for _, h := range c.status(t).Hosts {
		if h.Agent != "up" {
			t.Errorf("host %s agent %s", h.Name, h.Agent)
		}
	}
	checkReachability(t, c)
}

// checkContainerDeathWithoutAgent stops host2's supervisor, kills its agent,
// then kills a container's workload: the container's init restarts it with
// no agent alive. The agent, once back, reports the restart.
func checkContainerDeathWithoutAgent(t *testing.T, c cluster) {
	st := c.status(t)
	var victim model.ContainerStatus
	for _, ct := range st.Containers {
		if ct.Host == "host2" && ct.Ready() {
			victim = ct
			break
		}
	}
	if victim.Container == "" {
		t.Fatalf("no ready container on host2: %+v", st.Containers)
	}
	l := &lab.Lab{}
	sup, alive := l.SupervisorPid(c.name, "host2")
	if !alive {
		t.Fatal("host2 has no supervisor")
	}
	agentPid, alive := l.AgentPid(c.name, "host2")
	if !alive || agentPid != findHost(t, st, "host2").AgentPid {
		t.Fatalf("host2's agent: recorded %d (alive %v), registered %d", agentPid, alive, findHost(t, st, "host2").AgentPid)
	}
	// Frozen, the supervisor cannot bring the agent back.
	if err := syscall.Kill(sup, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(sup, syscall.SIGCONT); err != nil {
				t.Errorf("resuming the supervisor: %v", err)
			}
		}
	}
	t.Cleanup(resume)
	if err := syscall.Kill(agentPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "host2's agent is dead", func() error {
		if _, alive := l.AgentPid(c.name, "host2"); alive {
			return fmt.Errorf("pid %d still runs", agentPid)
		}
		return nil
	})
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var restarted int
	eventually(t, 5*time.Second, victim.Container+" restarted with no agent", func() error {
		pid, err := workloadPid(c, "host2", victim.Container)
		if err != nil {
			return err
		}
		if pid == victim.Pid {
			return fmt.Errorf("still the killed pid %d", pid)
		}
		restarted = pid
		return nil
	})
	t.Logf("%s restarted with no agent after %s", victim.Container, time.Since(killed).Round(time.Millisecond))
	if _, alive := l.AgentPid(c.name, "host2"); alive {
		t.Fatal("an agent of host2 ran meanwhile: the test proves nothing")
	}

	resume()
	eventually(t, 10*time.Second, "host2's agent back, reporting the restarted "+victim.Container, func() error {
		st := c.status(t)
		if h := findHost(t, st, "host2"); h.AgentPid == agentPid || h.Agent != "up" {
			return fmt.Errorf("agent %s pid %d", h.Agent, h.AgentPid)
		}
		ct := find(t, st, victim.Container)
		if ct.Pid != restarted || ct.Restarts != victim.Restarts+1 || !ct.Ready() {
			return fmt.Errorf("%s pid %d restarts %d %s/%s, want pid %d restarts %d ready", ct.Container, ct.Pid, ct.Restarts, ct.State, ct.Health, restarted, victim.Restarts+1)
		}
		if ct.IP != victim.IP || ct.MAC != victim.MAC {
			return fmt.Errorf("address changed: %s/%s -> %s/%s", victim.IP, victim.MAC, ct.IP, ct.MAC)
		}
		return nil
	})
	r := c.exec(t, victim.Container, "wget", "-q", "-T", "3", "-O", "-", "http://127.0.0.1:8080/health")
	if r.code != 0 {
		t.Errorf("the restarted %s does not serve: exit %d %s", victim.Container, r.code, r.stderr)
	}
}

// workloadPid finds the container's workload in its cgroup: the process
// running the hello binary.
func workloadPid(c cluster, host, container string) (int, error) {
	pids, err := cgroup.Pids(naming.CgroupRelPath(c.name, host, "c", container))
	if err != nil {
		return 0, err
	}
	for _, pid := range pids {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.HasPrefix(string(cmdline), helloBin+"\x00") {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no hello process among %v", pids)
}

func findHost(t *testing.T, st api.Status, name string) api.HostStatus {
	t.Helper()
	for _, h := range st.Hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("host %s not in status", name)
	return api.HostStatus{}
}

func checkChange(t *testing.T, c cluster) {
	before := c.status(t)
	c.rewrite(t, exampleFile("host2", 4, false))
	mustWeft(t, "up", "-f", c.file)
	st := c.status(t)
	names := map[string]model.ContainerStatus{}
	for _, ct := range st.Containers {
		names[ct.Container] = ct
	}
	if _, ok := names["extra-1"]; ok {
		t.Errorf("extra-1 should be gone")
	}
	if _, ok := names["web-4"]; !ok {
		t.Errorf("web-4 should exist")
	}
	if s := names["store-1"]; s.Host != "host2" || s.IP != netip.MustParseAddr("10.10.0.9") {
		t.Errorf("store-1 should be on host2 at 10.10.0.9, got %s %s", s.Host, s.IP)
	}
	for _, ct := range before.Containers {
		if ct.Container == "store-1" || ct.Container == "extra-1" {
			continue
		}
		if names[ct.Container].Pid != ct.Pid {
			t.Errorf("%s was restarted by an unrelated change", ct.Container)
		}
	}
	if _, err := os.Stat(filepath.Join("/run/netns", naming.ContainerNetns(c.name, "host2", "extra-1"))); err == nil {
		t.Errorf("extra-1's namespace is still there")
	}
	// Every host's static entries match the new placement exactly.
	for _, h := range []string{"host1", "host2", "host3"} {
		want := map[string]bool{}
		for _, ct := range st.Containers {
			if ct.Host != h {
				want[ct.IP.String()+" "+ct.MAC] = true
			}
		}
		got := map[string]bool{}
		for _, line := range strings.Split(run(t, inNetns(hostNetns(c, h), "ip", "neigh", "show", "dev", "vxlan444", "nud", "permanent")), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[1] == "lladdr" {
				got[f[0]+" "+f[2]] = true
			}
		}
		if fmt.Sprint(sortedKeys(want)) != fmt.Sprint(sortedKeys(got)) {
			t.Errorf("%s neighbors:\n want %v\n got  %v", h, sortedKeys(want), sortedKeys(got))
		}
		fdb := run(t, inNetns(hostNetns(c, h), "bridge", "fdb", "show", "dev", "vxlan444"))
		for _, ct := range st.Containers {
			if ct.Host == h {
				continue
			}
			dst := map[string]string{"host1": "192.168.1.10", "host2": "192.168.2.10", "host3": "192.168.3.10"}[ct.Host]
			if !strings.Contains(fdb, ct.MAC+" dst "+dst) {
				t.Errorf("%s fdb lacks %s dst %s:\n%s", h, ct.MAC, dst, fdb)
			}
		}
	}
	checkReachability(t, c)
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
