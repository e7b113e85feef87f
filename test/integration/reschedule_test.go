package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/runtime"
)

// A stateless service pinned to host1 with an address, a stateful one with
// a volume on host1, and clients on host2 and host3 to look from.
const rescheduleTmpl = `version: 1
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
    health: {http: /health, interval: 200ms}
  db:
    command: [HELLO, -listen, ":8080", -name, db]
    host: host1
    port: 8080
    volumes: [{name: data, path: /data}]
    health: {http: /health, interval: 200ms}
  client:
    command: [HELLO, -listen, ":8080", -name, client]
    replicas: 2
    hosts: [host2, host3]
    port: 8080
    health: {http: /health, interval: 200ms}
`

// TestRescheduleAfterCrash: host1 freezes (crash). After reschedule_after
// api-1 runs on another host with the same address and MAC, reachable by
// name and address from the other hosts; db-1 (volume) stays on host1.
// host1 comes back: its stale api-1 is stopped, one process per replica
// runs, every FDB points at the new host, and `weft up` changes nothing.
func TestRescheduleAfterCrash(t *testing.T) {
	testReschedule(t, "crash")
}

// TestRescheduleAfterCut: host1's leg is cut but its processes run on; the
// stale copy keeps running, unreachable, until host1 is back.
func TestRescheduleAfterCut(t *testing.T) {
	testReschedule(t, "cut")
}

func testReschedule(t *testing.T, mode string) {
	c := writeCluster(t, uniqueName("rs"), rescheduleTmpl)
	upCluster(t, c)
	t.Cleanup(func() {
		if t.Failed() {
			dumpAgentLogs(t, c)
		}
	})
	st := c.status(t)
	api := find(t, st, "api-1")
	if api.Host != "host1" || api.IP.String() != "10.10.0.5" || find(t, st, "db-1").Host != "host1" {
		t.Fatalf("api-1 and db-1 must start on host1: %+v", st.Containers)
	}
	wantMAC := naming.MACFromIP(api.IP).String()
	if n := countProcesses(t, c, "api"); n["host1"] != 1 || len(n) != 1 {
		t.Fatalf("api processes before the failure: %v, want one on host1", n)
	}

	l := &lab.Lab{}
	ctx := context.Background()
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		if err := l.Restore(ctx, c.name, "host1"); err != nil {
			t.Errorf("restoring host1: %v", err)
		}
	}
	// Thaw before `weft down` (registered earlier, so it runs later).
	t.Cleanup(restore)
	failed := time.Now()
	switch mode {
	case "crash":
		if err := l.Crash(ctx, c.name, "host1"); err != nil {
			t.Fatal(err)
		}
	case "cut":
		if err := l.Cut(ctx, c.name, "host1"); err != nil {
			t.Fatal(err)
		}
	}

	var newHost string
	eventually(t, 60*time.Second, "api-1 running and healthy on another host", func() error {
		st, err := statusOf(c)
		if err != nil {
			return err
		}
		for _, ct := range st.Containers {
			if ct.Container == "api-1" {
				if ct.Host == "host1" || !ct.Ready() {
					return fmt.Errorf("api-1 on %s, %s/%s", ct.Host, ct.State, ct.Health)
				}
				if ct.IP != api.IP || ct.MAC != wantMAC {
					t.Fatalf("api-1 moved with address %s MAC %s, want %s %s", ct.IP, ct.MAC, api.IP, wantMAC)
				}
				newHost = ct.Host
				return nil
			}
		}
		return fmt.Errorf("api-1 not in status")
	})
	t.Logf("%s of host1: api-1 healthy on %s after %s", mode, newHost, time.Since(failed).Round(time.Millisecond))

	st, err := statusOf(c)
	if err != nil {
		t.Fatal(err)
	}
	if db := find(t, st, "db-1"); db.Host != "host1" {
		t.Errorf("db-1 has a volume and must stay on host1, is on %s", db.Host)
	}
	for _, client := range []string{"client-1", "client-2"} {
		for _, target := range []string{"api", "api-1", "10.10.0.5"} {
			r := execVia(t, c, client, "wget", "-q", "-T", "3", "-O", "-", "http://"+target+":8080/health")
			if r.code != 0 || !strings.Contains(r.stdout, `"api"`) {
				t.Errorf("%s -> %s after the move: exit %d %s%s", client, target, r.code, r.stdout, r.stderr)
			}
		}
	}
	// While host1 is away its copy still exists (frozen or cut off).
	if n := countProcesses(t, c, "api"); n["host1"] != 1 || n[newHost] != 1 {
		t.Errorf("api processes while host1 is away: %v, want the stale one on host1 and one on %s", n, newHost)
	}

	restore()
	eventually(t, 60*time.Second, "host1's stale api-1 stopped", func() error {
		n := countProcesses(t, c, "api")
		if n["host1"] != 0 || n[newHost] != 1 || len(n) != 1 {
			return fmt.Errorf("api processes %v", n)
		}
		return nil
	})
	// Its namespace and veth on host1 went with it.
	staleNS := naming.ContainerNetns(c.name, "host1", "api-1")
	eventually(t, 30*time.Second, "host1's api-1 namespace and link removed", func() error {
		if _, err := os.Stat(filepath.Join("/run/netns", staleNS)); err == nil {
			return fmt.Errorf("namespace %s still exists", staleNS)
		}
		out, err := inNetns(hostNetns(c, "host1"), "ip", "-o", "link", "show", "master", "br-vxlan").CombinedOutput()
		if err != nil {
			return fmt.Errorf("listing host1's bridge ports: %v %s", err, out)
		}
		if n := strings.Count(string(out), "\n"); n != 2 { // vxlan444 and db-1's veth
			return fmt.Errorf("host1's bridge has %d ports, want 2 (vxlan and db-1):\n%s", n, out)
		}
		return nil
	})
	for _, svc := range []string{"db", "client"} {
		total := 0
		for _, k := range countProcesses(t, c, svc) {
			total += k
		}
		want := 1
		if svc == "client" {
			want = 2
		}
		if total != want {
			t.Errorf("%s: %d processes, want %d", svc, total, want)
		}
	}
	newAddr := map[string]string{"host2": "192.168.2.10", "host3": "192.168.3.10"}[newHost]
	eventually(t, 30*time.Second, "every host's FDB entry for api-1's MAC points at "+newHost, func() error {
		for _, h := range []string{"host1", "host2", "host3"} {
			out, err := inNetns(hostNetns(c, h), "bridge", "fdb", "show", "dev", "vxlan444").CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: bridge fdb: %v %s", h, err, out)
			}
			var entries []string
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, wantMAC+" ") && strings.Contains(line, " dst ") {
					entries = append(entries, line)
				}
			}
			switch {
			case h == newHost && len(entries) != 0:
				return fmt.Errorf("%s runs api-1 but its vxlan FDB still sends the MAC away: %v", h, entries)
			case h != newHost && (len(entries) != 1 || !strings.Contains(entries[0], " dst "+newAddr+" ")):
				return fmt.Errorf("%s: vxlan FDB entries for %s: %v, want one to %s", h, wantMAC, entries, newAddr)
			}
		}
		return nil
	})
	// host1's own container reaches api-1 on its new host, by name and address.
	eventually(t, 30*time.Second, "db-1 on host1 reaches api-1 on "+newHost, func() error {
		for _, target := range []string{"api", "10.10.0.5"} {
			r := c.exec(t, "db-1", "wget", "-q", "-T", "2", "-O", "-", "http://"+target+":8080/health")
			if r.code != 0 || !strings.Contains(r.stdout, `"api"`) {
				return fmt.Errorf("db-1 -> %s: exit %d %s%s", target, r.code, r.stdout, r.stderr)
			}
		}
		return nil
	})
	if db := find(t, c.status(t), "db-1"); db.Host != "host1" {
		t.Errorf("db-1 on %s after host1 came back, want host1", db.Host)
	}

	out := mustWeft(t, "up", "-f", c.file)
	if !strings.Contains(out, "changes: 0") {
		t.Errorf("weft up of the unchanged file after the move:\n%s\nwant 0 changes", out)
	}
	if a := find(t, c.status(t), "api-1"); a.Host != newHost {
		t.Errorf("api-1 moved back to %s by itself", a.Host)
	}

	// Moving it back, as docs/cluster-file.md says: apply the file once with
	// `reschedule: false` on the service, then without.
	c.rewrite(t, strings.Replace(rescheduleTmpl, "    ip: 10.10.0.5\n", "    ip: 10.10.0.5\n    reschedule: false\n", 1))
	out = mustWeft(t, "up", "-f", c.file)
	if !strings.Contains(out, "changes: 1") {
		t.Errorf("weft up with reschedule: false:\n%s\nwant 1 change (api-1 moves home)", out)
	}
	if a := find(t, c.status(t), "api-1"); a.Host != "host1" || a.IP != api.IP || !a.Ready() {
		t.Errorf("api-1 after reschedule: false = %+v, want healthy on host1 with %s", a, api.IP)
	}
	c.rewrite(t, rescheduleTmpl)
	out = mustWeft(t, "up", "-f", c.file)
	if !strings.Contains(out, "changes: 0") {
		t.Errorf("weft up of the original file once home:\n%s\nwant 0 changes", out)
	}
	eventually(t, 30*time.Second, "one api process, on host1", func() error {
		if n := countProcesses(t, c, "api"); n["host1"] != 1 || len(n) != 1 {
			return fmt.Errorf("api processes %v", n)
		}
		return nil
	})
}

// statusOf asks the agents of host3, host2, host1 in turn for the cluster's
// status, without failing the test (for polling). It does not use `weft
// status`, which may ask host1's agent first: cut off, that agent answers
// its health check but cannot read the store.
func statusOf(c cluster) (api.Status, error) {
	var errs []string
	for _, h := range []string{"host3", "host2", "host1"} {
		cl := api.NewClient(naming.AgentSocket(naming.DefaultStateRoot, c.name, h))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		st, err := cl.Status(ctx)
		cancel()
		if err == nil {
			return st, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", h, err))
	}
	return api.Status{}, fmt.Errorf("no agent answers status: %s", strings.Join(errs, "; "))
}

// execVia runs argv inside a container found through statusOf (see there).
func execVia(t *testing.T, c cluster, container string, argv ...string) result {
	t.Helper()
	st, err := statusOf(c)
	if err != nil {
		t.Fatal(err)
	}
	ct := find(t, st, container)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := runtime.ExecCommand(ctx, ct.Pid, argv)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return result{out.String(), errb.String(), code}
}

// countProcesses counts, per host, the processes of the cluster that run
// service svc's program (the hello binary with `-name svc`), found by their
// command line and cgroup.
func countProcesses(t *testing.T, c cluster, svc string) map[string]int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	prefix := "/" + naming.CgroupRelPath(c.name) + "/"
	out := map[string]int{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(argv) < 5 || argv[0] != helloBin || argv[len(argv)-2] != "-name" || argv[len(argv)-1] != svc {
			continue
		}
		cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(cg), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 || parts[1] != "pids" {
				continue
			}
			if rest, ok := strings.CutPrefix(parts[2], prefix); ok {
				out[strings.SplitN(rest, "/", 2)[0]]++
			}
		}
	}
	return out
}

// dumpAgentLogs shows what the agents said about hosts and placement.
func dumpAgentLogs(t *testing.T, c cluster) {
	for _, h := range []string{"host1", "host2", "host3"} {
		b, err := os.ReadFile(filepath.Join(naming.HostStateDir(naming.DefaultStateRoot, c.name, h), "agent.log"))
		if err != nil {
			t.Logf("%s: %v", h, err)
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "WARN") || strings.Contains(line, "ERROR") || strings.Contains(line, "placement") ||
				strings.Contains(line, "host down") || strings.Contains(line, "host back") || strings.Contains(line, "leading") ||
				strings.Contains(line, "removed") {
				t.Logf("%s: %s", h, line)
			}
		}
	}
}
