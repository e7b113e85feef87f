package integration

import (
	"encoding/json"
	"errors"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/cgroup"
	wcluster "github.com/weft-dev/weft/internal/cluster"
	"github.com/weft-dev/weft/internal/naming"
)

// sshClusterTmpl is a cluster of provider ssh on the rig's two servers;
// NAME, KEY, KNOWN, ROOT and HELLO are replaced. The services' binary
// reaches the servers as an artifact.
const sshClusterTmpl = `version: 1
name: NAME
provider: ssh
ssh: {user: root, key: KEY, known_hosts: KNOWN, install_root: ROOT/default}
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a, address: 192.168.1.10, install_root: ROOT/host1}
  - {name: host2, subnet: b, address: 192.168.2.10, install_root: ROOT/host2}
services:
  api:
    artifacts: {HELLO: ROOT/apps/hello}
    command: [ROOT/apps/hello, -listen, ":8080", -name, api]
    host: host1
    ip: 10.10.0.5
    port: 8080
    depends_on: [store]
    health: {http: /health, interval: 200ms}
  store:
    artifacts: {HELLO: ROOT/apps/hello}
    command: [ROOT/apps/hello, -listen, ":8080", -name, store]
    host: host2
    ip: 10.10.0.9
    port: 8080
    health: {http: /health, interval: 200ms}
`

// TestSSHProvider brings a cluster up with provider ssh on servers that
// have nothing but sshd (the rig: lab hosts without agents), over ssh from
// the rig's router namespace: an unknown host key is refused until
// --accept-new-host-keys; then containers on both servers reach each other
// by name without any frame flooding the underlay, a second up changes
// nothing, and down leaves nothing on the servers but their sshd.
func TestSSHProvider(t *testing.T) {
	rig := startSSHRig(t,
		rigHost{name: "host1", subnet: "a", addr: netip.MustParseAddr("192.168.1.10")},
		rigHost{name: "host2", subnet: "b", addr: netip.MustParseAddr("192.168.2.10")})
	name := uniqueName("ss")
	dir := t.TempDir()
	root := filepath.Join(dir, "servers")
	known := filepath.Join(dir, "known_hosts")
	body := strings.NewReplacer("NAME", name, "KEY", rig.key, "KNOWN", known, "ROOT", root, "HELLO", helloBin).Replace(sshClusterTmpl)
	file := filepath.Join(dir, "weft.yaml")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	via := "--ssh-from-netns=" + rig.router
	t.Cleanup(func() {
		if r := weft(t, "down", "--cluster", name, via); r.code != 0 {
			t.Errorf("weft down %s: %s%s", name, r.stdout, r.stderr)
		}
	})

	// Unknown host keys: refused, and nothing is put on a server.
	r := weft(t, "up", "-f", file, via)
	if r.code == 0 || !strings.Contains(r.stderr, "--accept-new-host-keys") {
		t.Fatalf("up with unknown host keys: exit %d, want a refusal naming --accept-new-host-keys\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused up left %s behind (err %v)", root, err)
	}

	mustWeft(t, "up", "-f", file, via, "--accept-new-host-keys")
	if b, err := os.ReadFile(known); err != nil || strings.Count(string(b), "\n") != 2 {
		t.Errorf("known_hosts after accepting: %q (err %v), want one line per server", b, err)
	}
	all, macs := sshContainers(t, name, root)

	// The operator's `weft status` reaches the agents on the servers through
	// ssh, as up does: every server's agent up, every container ready.
	var st api.Status
	if err := json.Unmarshal([]byte(mustWeft(t, "status", "--cluster", name, "--json", via)), &st); err != nil {
		t.Fatalf("decoding weft status --json: %v", err)
	}
	if len(st.Unreachable) > 0 || len(st.Hosts) != 2 || len(st.Containers) != len(all) {
		t.Errorf("weft status from this machine: hosts %+v, containers %+v, unreachable %v; want both servers and %d containers", st.Hosts, st.Containers, st.Unreachable, len(all))
	}
	for _, h := range st.Hosts {
		if h.Agent != "up" {
			t.Errorf("weft status from this machine: host %s agent %s, want up", h.Name, h.Agent)
		}
	}
	for _, c := range st.Containers {
		if !c.Ready() {
			t.Errorf("weft status from this machine: %s is %s/%s, want ready", c.Container, c.State, c.Health)
		}
	}
	// So do exec (run by the container's server, its exit status carried
	// back) and logs.
	for _, from := range all {
		to := all[0]
		if to == from {
			to = all[1]
		}
		if out := mustWeft(t, "exec", "--cluster", name, via, from.name, "--", "wget", "-q", "-T", "3", "-O", "-", "http://"+to.service+":8080/health"); out == "" {
			t.Errorf("weft exec %s from this machine: no answer from %s", from.name, to.service)
		}
	}
	if r := weft(t, "exec", "--cluster", name, via, all[0].name, "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("weft exec of a command exiting 3 on a server: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := weft(t, "logs", "--cluster", name, via, all[0].name); r.code != 0 {
		t.Errorf("weft logs %s from this machine: exit %d\n%s%s", all[0].name, r.code, r.stdout, r.stderr)
	}
	checkNoFloodingIn(t, rig.router, len(rig.hosts), macs, func() {
		// As checkNoFlooding: best effort (a container may lack the right).
		for _, c := range all {
			_, _ = serverWeft(filepath.Join(root, c.host), name, "exec", c.name, "--", "ip", "neigh", "flush", "all")
		}
	}, func() { checkSSHReachability(t, name, root, all) })

	// Again: the same binary, certificates, files and running agents.
	out := mustWeft(t, "up", "-f", file, via, "--json")
	var res wcluster.UpResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("decoding up --json: %v\n%s", err, out)
	}
	if res.HostChanges != 0 || res.Changes.Count() != 0 || res.SpecChanged {
		t.Errorf("second up changed something: %d on the servers, %d in the cluster (spec changed %v)", res.HostChanges, res.Changes.Count(), res.SpecChanged)
	}

	mustWeft(t, "down", "--cluster", name, via)
	if _, err := os.Stat(filepath.Join(root, "apps", "hello")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the artifact was left behind (err %v)", err)
	}
	for _, h := range rig.hosts {
		if _, err := os.Stat(filepath.Join(root, h.name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: install root left behind (err %v)", h.name, err)
		}
		for pid, comm := range procsInNetns(h.netns) {
			if comm != "sshd" {
				t.Errorf("%s: process %d (%s) left behind", h.name, pid, comm)
			}
		}
		links, err := exec.Command("ip", "-n", h.netns, "-o", "link", "show").CombinedOutput()
		if err != nil || strings.Contains(string(links), "vxlan444") || strings.Contains(string(links), "br-vxlan") {
			t.Errorf("%s: overlay links left behind (err %v):\n%s", h.name, err, links)
		}
		tables, err := exec.Command("ip", "netns", "exec", h.netns, "nft", "list", "tables").CombinedOutput()
		if err != nil || strings.Contains(string(tables), "weft") {
			t.Errorf("%s: nftables tables left behind (err %v):\n%s", h.name, err, tables)
		}
	}
	if left, _ := filepath.Glob("/run/netns/" + naming.NetnsPrefix(name) + "*"); len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
	if pids, _ := cgroup.Pids(naming.CgroupRelPath(name)); len(pids) > 0 {
		t.Errorf("processes left in cgroup %s: %v", naming.CgroupRelPath(name), pids)
	}
	if left, _ := filepath.Glob(filepath.Join(cgroup.Root, "*", naming.CgroupRelPath(name))); len(left) > 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
	if _, err := os.Stat(naming.StateDir(naming.DefaultStateRoot, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state of %s left on this machine (err %v)", name, err)
	}
}

// sshContainer is one container of an ssh cluster and its server.
type sshContainer struct{ name, service, ip, host string }

// sshContainers lists every container, each from the status of its own
// server (run there, as an operator logged in would), and every MAC the
// servers know of (containers and host bridges).
func sshContainers(t *testing.T, name, root string) ([]sshContainer, map[string]bool) {
	t.Helper()
	var all []sshContainer
	known := map[string]bool{}
	for _, host := range []string{"host1", "host2"} {
		st := serverStatus(t, name, filepath.Join(root, host))
		maps.Copy(known, knownMACs(st))
		for _, c := range st.Containers {
			if c.Host == host {
				if !c.Ready() {
					t.Fatalf("%s is not ready: %+v", c.Container, c)
				}
				all = append(all, sshContainer{c.Container, c.Service, c.IP.String(), host})
			}
		}
	}
	if len(all) != 2 {
		t.Fatalf("containers: %+v, want api-1 on host1 and store-1 on host2", all)
	}
	return all, known
}

// checkSSHReachability: every container reaches every other by service
// name and by address, across the two servers, through weft exec on its
// own server.
func checkSSHReachability(t *testing.T, name, root string, all []sshContainer) {
	t.Helper()
	for _, from := range all {
		for _, to := range all {
			for _, target := range []string{to.service, to.ip} {
				out, err := serverWeft(filepath.Join(root, from.host), name, "exec", from.name, "--", "wget", "-q", "-T", "3", "-O", "-", "http://"+target+":8080/health")
				var h struct{ Status, Service string }
				if err != nil || json.Unmarshal(out, &h) != nil || h.Status != "ok" || h.Service != to.service {
					t.Errorf("%s (%s) -> %s (%s): %v %s", from.name, from.host, target, to.host, err, out)
				}
			}
		}
	}
}

// serverWeft runs the weft installed on a server (the rig shares this
// machine's files and processes) with that server's state root.
func serverWeft(serverRoot, cluster string, args ...string) ([]byte, error) {
	argv := append([]string{"--state-root", filepath.Join(serverRoot, "state"), "--cluster", cluster}, args...)
	return exec.Command(filepath.Join(serverRoot, "bin", "weft"), argv...).Output()
}

func serverStatus(t *testing.T, cluster, serverRoot string) api.Status {
	t.Helper()
	out, err := serverWeft(serverRoot, cluster, "status", "--json")
	var st api.Status
	if err != nil || json.Unmarshal(out, &st) != nil {
		t.Fatalf("status on %s: %v\n%s", serverRoot, err, out)
	}
	return st
}
