package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/chaos/native"
	"github.com/weft-dev/weft/internal/fault"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/pki"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// TestChaosBadExperiments: bad experiment files and flags are refused with
// exit 2, every problem named, before anything runs.
func TestChaosBadExperiments(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", `
title: ""
method:
  - {type: action, name: a, provider: {type: weft, func: loss, arguments: {from: x, percent: 150, duration: forever}}}
  - {type: action, name: b, provider: {type: python, module: chaosaws, func: stop}}
  - {ref: missing}
steady-state-hypothesis:
  title: h
  probes:
    - {type: probe, name: p, provider: {type: http, url: "http://127.0.0.1:1/"}}
`)
	for _, args := range [][]string{{"chaos", "validate", bad}, {"chaos", "run", bad}} {
		r := weft(t, args...)
		if r.code != 2 {
			t.Errorf("weft %v: exit %d, want 2\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		for _, field := range []string{"title: missing", "method[0].provider.arguments.percent", "method[0].provider.arguments.duration",
			"method[0].provider.arguments.to", "method[1].provider.type", "method[2].ref", "steady-state-hypothesis.probes[0].tolerance"} {
			if field == "method[0].provider.arguments.to" {
				continue // to is optional
			}
			if !strings.Contains(r.stderr, field) {
				t.Errorf("weft %v does not name %s:\n%s", args, field, r.stderr)
			}
		}
	}
	for _, body := range []string{"{", "[1, 2]", "title: t\nmethod: []\n", "title: t\nmethod:\n  - {type: action, name: v, provider: {type: weft, func: vip-holder}}\n"} {
		p := write("b.yaml", body)
		if r := weft(t, "chaos", "validate", p); r.code != 2 {
			t.Errorf("%q: exit %d, want 2: %s", body, r.code, r.stderr)
		}
	}
	good := write("good.json", `{"title":"t","method":[{"type":"probe","name":"p","provider":{"type":"process","path":"true"}}]}`)
	if r := weft(t, "chaos", "validate", good); r.code != 0 {
		t.Errorf("good file: exit %d %s", r.code, r.stderr)
	}
	for _, flags := range [][]string{{"--rollback-strategy", "sometimes"}, {"--hypothesis-strategy", "never"}, {"--var", "novalue"}, {"--load", "http://10.10.0.5:80/:10"}} {
		r := weft(t, append([]string{"chaos", "run", good, "--journal", filepath.Join(dir, "j.json")}, flags...)...)
		if r.code != 2 {
			t.Errorf("flags %v: exit %d, want 2: %s", flags, r.code, r.stderr)
		}
	}
	// A run without weft faults: a process probe deciding the verdict.
	j := filepath.Join(dir, "j.json")
	r := weft(t, "chaos", "run", good, "--journal", j)
	if r.code != 0 || !strings.Contains(r.stdout, "VERDICT: PASSED") {
		t.Errorf("good run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	failing := write("failing.json", `{"title":"t","steady-state-hypothesis":{"title":"h","probes":[{"type":"probe","name":"p","tolerance":0,"provider":{"type":"process","path":"false"}}]},"method":[{"type":"probe","name":"q","provider":{"type":"process","path":"true"}}]}`)
	r = weft(t, "chaos", "run", failing, "--journal", j)
	if r.code != 1 || !strings.Contains(r.stdout, "VERDICT: FAILED") || !strings.Contains(r.stdout, "steady state before: not met") {
		t.Errorf("failing run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkJournalShape(t, j, "failed")
}

// checkJournalShape checks a journal file has Chaos Toolkit's field names
// and status values.
func checkJournalShape(t *testing.T, path, wantStatus string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var j map[string]any
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("journal %s: %v", path, err)
	}
	for _, k := range []string{"chaoslib-version", "platform", "node", "experiment", "start", "end", "duration", "status", "deviated", "steady_states", "run", "rollbacks"} {
		if _, ok := j[k]; !ok {
			t.Errorf("journal has no %q", k)
		}
	}
	if j["status"] != wantStatus {
		t.Errorf("journal status %v, want %s", j["status"], wantStatus)
	}
	if !slices.Contains([]string{"completed", "failed", "aborted", "interrupted"}, fmt.Sprint(j["status"])) {
		t.Errorf("status %v is not a Chaos Toolkit status", j["status"])
	}
	runs, _ := j["run"].([]any)
	rbs, _ := j["rollbacks"].([]any)
	for _, r := range append(runs, rbs...) {
		m := r.(map[string]any)
		if s := m["status"]; s != "succeeded" && s != "failed" {
			t.Errorf("run status %v", s)
		}
		for _, k := range []string{"activity", "output", "start", "end", "duration"} {
			if _, ok := m[k]; !ok {
				t.Errorf("run has no %q: %v", k, m)
			}
		}
	}
	return j
}

// chaosShop is a shop cluster for the chaos tests.
type chaosShop struct {
	cluster
	port int
	spec *spec.Cluster
}

func upChaosShop(t *testing.T) chaosShop {
	t.Helper()
	c, port, _ := shopCluster(t, "cz")
	upCluster(t, c)
	sp, err := spec.Load(c.file)
	if err != nil {
		t.Fatal(err)
	}
	return chaosShop{cluster: c, port: port, spec: sp}
}

func (s chaosShop) run(t *testing.T, experiment string, extra ...string) (result, string) {
	t.Helper()
	j := filepath.Join(t.TempDir(), "journal.json")
	args := append([]string{"chaos", "run", experiment, "-f", s.file, "--journal", j,
		"--var", fmt.Sprintf("base_url=http://127.0.0.1:%d", s.port),
		"--var", "walk=" + filepath.Join(repoDir, "examples/chaos/order-walk.sh")}, extra...)
	return weft(t, args...), j
}

// leftovers lists every trace a fault could leave in the cluster: nftables
// fault tables and weft tbf qdiscs in any of its namespaces, a frozen
// cgroup, a down router leg, a delay or burn process, a fault record.
func (s chaosShop) leftovers(t *testing.T) []string {
	t.Helper()
	out := s.kernelLeftovers(t)
	if recs := s.faultRecords(t); len(recs) > 0 {
		out = append(out, fmt.Sprintf("fault records %v", recs))
	}
	return out
}

// kernelLeftovers is leftovers without the store: quick to ask, so it
// times when a fault really ended.
func (s chaosShop) kernelLeftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	nss, _ := filepath.Glob("/run/netns/" + naming.NetnsPrefix(s.name) + "*")
	for _, p := range nss {
		ns := filepath.Base(p)
		if tables, err := fault.TablesIn(ns); err == nil && len(tables) > 0 {
			out = append(out, fmt.Sprintf("nftables %v in %s", tables, ns))
		}
		links, _ := exec.Command("ip", "-n", ns, "-o", "link", "show").Output()
		for _, l := range strings.Split(string(links), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			dev := strings.TrimSuffix(strings.Split(f[1], "@")[0], ":")
			if has, _ := fault.HasTbf(ns, dev); has {
				out = append(out, fmt.Sprintf("tbf on %s in %s", dev, ns))
			}
			if strings.HasSuffix(ns, ".router") && strings.Contains(l, "state DOWN") {
				out = append(out, fmt.Sprintf("router leg %s down", dev))
			}
		}
	}
	for _, h := range s.spec.Hosts {
		if st := cgroup.FreezerState(naming.CgroupRelPath(s.name, h.Name)); st != "" && st != "THAWED" {
			out = append(out, fmt.Sprintf("host %s freezer %s", h.Name, st))
		}
	}
	procs, _ := exec.Command("pgrep", "-f", "fault-(delay|burn)").Output()
	if len(strings.TrimSpace(string(procs))) > 0 {
		out = append(out, "helper processes: "+strings.TrimSpace(string(procs)))
	}
	return out
}

func (s chaosShop) faultRecords(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, r := range s.faultRecordList(t) {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	return ids
}

// connectStore connects to the cluster's store from the router namespace
// (where a client of the VPC is); the caller closes it.
func (s chaosShop) connectStore(t *testing.T) *store.Store {
	t.Helper()
	router := naming.RouterNetns(s.name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := pki.CLIFiles(naming.DefaultStateRoot, s.name).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.ConnectVia(ctx, func(ctx context.Context, addr string) (net.Conn, error) { return native.DialIn(ctx, router, addr) },
		store.ClientURLs(s.spec), creds, s.name)
	if err != nil {
		t.Fatalf("connecting to the store: %v", err)
	}
	return st
}

func (s chaosShop) faultRecordList(t *testing.T) []store.FaultRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := s.connectStore(t)
	defer st.Close()
	recs, _, err := st.Faults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.FaultRecord
	for _, r := range recs {
		out = append(out, r)
	}
	return out
}

func (s chaosShop) noLeftovers(t *testing.T, what string) {
	t.Helper()
	// Rollback has returned; agents delete records of faults that ended on
	// their own within a sweep.
	var left []string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if left = s.leftovers(t); len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("after %s, left behind: %v", what, left)
}

// TestChaosShop runs the shop's chaos examples, checks each passes and
// leaves nothing behind, measures a partition in the real lab, and kills a
// runner with -9 in the middle of its faults.
func TestChaosShop(t *testing.T) {
	s := upChaosShop(t)
	s.runExamples(t, "kill-product-service", "cut-database-host", "loss-gateways-services", "bandwidth-order-service", "latency-inventory-service")
	t.Run("a partition drops everything across it and nothing else", func(t *testing.T) { chaosPartition(t, s) })
	t.Run("loss and latency measured between the shop's containers", func(t *testing.T) { chaosMeasured(t, s) })
	t.Run("kill-agent: the agent is started again when the fault ends", func(t *testing.T) { chaosKillAgent(t, s) })
	t.Run("fill-disk and burn-cpu act inside their container and end", func(t *testing.T) { chaosDiskCPU(t, s) })
	t.Run("Ctrl-C mid-fault: rollbacks run, faults end at once, journal interrupted", func(t *testing.T) { chaosInterrupt(t, s) })
	t.Run("runner killed -9 mid-fault: faults still end on time", func(t *testing.T) { chaosKill9(t, s) })
	// Last: it moves the VIP and reschedules what ran on host1.
	s.runExamples(t, "crash-gateway-1-host")
}

// runExamples runs examples/chaos/<ex>.yaml under load, each a subtest.
func (s chaosShop) runExamples(t *testing.T, examples ...string) {
	for _, ex := range examples {
		t.Run(ex, func(t *testing.T) {
			report := t.TempDir()
			r, jpath := s.run(t, filepath.Join(repoDir, "examples/chaos", ex+".yaml"), "--report", report,
				"--load", fmt.Sprintf("http://127.0.0.1:%d/api/v1/products/:20", s.port))
			if r.code != 0 || !strings.Contains(r.stdout, "VERDICT: PASSED") {
				t.Errorf("%s: exit %d", ex, r.code)
				// Line by line, so that each survives make's filter of the log.
				for _, line := range strings.Split(strings.TrimSpace(r.stdout+"\n"+r.stderr), "\n") {
					t.Logf("%s: %s", ex, line)
				}
			}
			j := checkJournalShape(t, jpath, "completed")
			if ex == "latency-inventory-service" {
				out, _ := json.Marshal(j["run"])
				if !strings.Contains(string(out), fault.MechanismNFQueue) {
					t.Errorf("the journal does not say which latency mechanism was used")
				}
			}
			for _, f := range []string{"timeline.png", "summary.txt", "journal.json"} {
				if st, err := os.Stat(filepath.Join(report, f)); err != nil || st.Size() == 0 {
					t.Errorf("report file %s: %v", f, err)
				}
			}
			s.noLeftovers(t, ex)
		})
	}
}

func pingOK(ns, addr string) bool {
	return inNetns(ns, "ping", "-q", "-c", "2", "-i", "0.2", "-W", "1", addr).Run() == nil
}

func startRunner(t *testing.T, s chaosShop, body string) (*exec.Cmd, string) {
	t.Helper()
	dir := t.TempDir()
	exp := filepath.Join(dir, "exp.yaml")
	if err := os.WriteFile(exp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "runner.log"))
	cmd := exec.Command(weftBin, "chaos", "run", exp, "-f", s.file, "--journal", filepath.Join(dir, "journal.json"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	return cmd, filepath.Join(dir, "runner.log")
}

func chaosPartition(t *testing.T, s chaosShop) {
	h := map[string]string{}
	for _, host := range s.spec.Hosts {
		h[host.Name] = host.Address.String()
	}
	// Asked from gateway-1's own namespace: no agent in the way.
	gw1 := naming.ContainerNetns(s.name, "host1", "gateway-1-1")
	orderIP, dbIP := containerIP(t, s, "order-service-1"), containerIP(t, s, "product-db-1")
	cmd, logPath := startRunner(t, s, `
title: partition host1 from host2
method:
  - type: action
    name: cut
    provider: {type: weft, func: partition, arguments: {groups: [[host1], [host2]], duration: 12s, wait: true}}
`)
	eventually(t, 15*time.Second, "partition in place", func() error {
		if pingOK(hostNetns(s.cluster, "host1"), h["host2"]) {
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("host1 still reaches host2; runner: %s", b)
		}
		return nil
	})
	across := [][2]string{{"host1", h["host2"]}, {"host2", h["host1"]}}
	for _, p := range across {
		if pingOK(hostNetns(s.cluster, p[0]), p[1]) {
			t.Errorf("%s reaches %s across the partition", p[0], p[1])
		}
	}
	// Containers across the cut (overlay over the underlay) are cut too:
	// gateway-1 (host1) cannot reach order-service (host2).
	if pingOK(gw1, orderIP) {
		t.Errorf("gateway-1 reaches order-service across the partition")
	}
	for _, p := range [][2]string{{"host1", h["host3"]}, {"host3", h["host1"]}, {"host2", h["host3"]}, {"host3", h["host2"]}} {
		if !pingOK(hostNetns(s.cluster, p[0]), p[1]) {
			t.Errorf("%s does not reach %s: the partition reaches beyond its groups", p[0], p[1])
		}
	}
	if !pingOK(gw1, dbIP) {
		t.Errorf("gateway-1 (host1) does not reach product-db (host3) during a host1|host2 partition")
	}
	if err := cmd.Wait(); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Errorf("runner: %v\n%s", err, b)
	}
	if !pingOK(hostNetns(s.cluster, "host1"), h["host2"]) {
		t.Errorf("host1 does not reach host2 after the partition ended")
	}
	s.noLeftovers(t, "the partition")
}

func chaosKill9(t *testing.T, s chaosShop) {
	const dur = 8 * time.Second
	cmd, logPath := startRunner(t, s, fmt.Sprintf(`
title: faults outlive their runner
method:
  - type: action
    name: latency
    provider: {type: weft, func: latency, arguments: {target: inventory-service, delay: 100ms, duration: %[1]s}}
  - type: action
    name: crash
    provider: {type: weft, func: crash-host, arguments: {host: host3, duration: %[1]s}}
  - type: action
    name: bandwidth
    provider: {type: weft, func: bandwidth, arguments: {target: order-service, rate: 5mbit, duration: %[1]s}}
    pauses: {after: 60}
`, dur))
	eventually(t, 20*time.Second, "all three faults applied", func() error {
		b, _ := os.ReadFile(logPath)
		if n := len(regexp.MustCompile(`fault [0-9a-f]+: `).FindAll(b, -1)); n < 3 {
			return fmt.Errorf("%d faults applied so far; runner: %s", n, b)
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if left := s.kernelLeftovers(t); len(left) < 3 {
		t.Fatalf("right after kill -9 the faults should still be in place, found only %v", left)
	}
	// The faults' expiries, as recorded in the store before they were applied.
	var first, last time.Time
	for _, r := range s.faultRecordList(t) {
		if first.IsZero() || r.Expires.Before(first) {
			first = r.Expires
		}
		if r.Expires.After(last) {
			last = r.Expires
		}
	}
	if first.IsZero() {
		t.Fatal("no fault records in the store after the faults were applied")
	}
	// Nothing ends early: until the first expiry the faults stay.
	if wait := time.Until(first.Add(-time.Second)); wait > 0 {
		time.Sleep(wait) // the condition is "still there at this moment": a poll would not show more
	}
	if left := s.kernelLeftovers(t); len(left) == 0 {
		t.Errorf("the faults ended before their expiry")
	}
	// Every fault ends by its expiry plus the agents' sweep, without the runner.
	var left []string
	deadline := last.Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if left = s.kernelLeftovers(t); len(left) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		logs, _ := filepath.Glob(filepath.Join(naming.StateDir(naming.DefaultStateRoot, s.name), "hosts", "*", "agent.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "fault") {
					t.Logf("%s: %s", filepath.Base(filepath.Dir(l)), line)
				}
			}
		}
		t.Fatalf("4s after the last expiry (runner killed -9), still left: %v", left)
	}
	gone := time.Since(last).Round(100 * time.Millisecond)
	s.noLeftovers(t, "the faults of a runner killed -9") // and their records
	t.Logf("every fault gone %s after the last expiry (duration %s), runner dead", gone, dur)
	// The whole walk, not only the product list: the next experiment's
	// steady state needs every service, and in a CI run the walk's first
	// step (register: user-service, user-db on host3) still failed right
	// after the product list answered again.
	eventually(t, 60*time.Second, "the shop takes orders again after the crash", func() error {
		out, err := exec.Command(filepath.Join(repoDir, "examples/chaos/order-walk.sh"), fmt.Sprintf("http://127.0.0.1:%d", s.port)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("order walk: %v: %s", err, out)
		}
		return nil
	})
}

func chaosDiskCPU(t *testing.T, s chaosShop) {
	cmd, logPath := startRunner(t, s, `
title: disk and cpu
method:
  - type: action
    name: fill
    provider: {type: weft, func: fill-disk, arguments: {container: product-db-1, bytes: 64MiB, duration: 6s}}
  - type: action
    name: burn
    provider: {type: weft, func: burn-cpu, arguments: {container: product-service-1, workers: 1, duration: 6s, wait: true}}
`)
	volume := naming.VolumeDir(naming.DefaultStateRoot, s.name, "product-db-1", "data")
	var burner string
	eventually(t, 20*time.Second, "a 64 MiB file in product-db's volume and a burner running", func() error {
		files, _ := filepath.Glob(filepath.Join(volume, ".weft-fault-*"))
		if len(files) != 1 {
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("fill files %v; runner: %s", files, b)
		}
		if st, err := os.Stat(files[0]); err != nil || st.Size() != 64<<20 {
			return fmt.Errorf("fill file %v %v", st, err)
		}
		out, _ := exec.Command("pgrep", "-f", "fault-burn").Output()
		for _, pid := range strings.Fields(string(out)) {
			if comm, _ := os.ReadFile("/proc/" + pid + "/comm"); strings.TrimSpace(string(comm)) == "weft" {
				burner = pid
				return nil
			}
		}
		return fmt.Errorf("no burner process in %q", out)
	})
	// The burner is in product-service's cgroups (an image container:
	// its root has no weft binary) and uses CPU. Its pids and freezer
	// cgroups are the container's own (a container without limits shares
	// the root cpu and memory cgroups with the agent that started the
	// burner, so those alone would prove nothing).
	cgroupOf := func(pid, controller string) string {
		b, _ := os.ReadFile("/proc/" + pid + "/cgroup")
		for _, line := range strings.Split(string(b), "\n") {
			if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), controller) {
				return parts[2]
			}
		}
		return ""
	}
	st := s.status(t)
	for _, c := range st.Containers {
		if c.Container == "product-service-1" {
			for _, controller := range []string{cgroup.Controller, cgroup.Freezer, cgroup.CPU, cgroup.Memory} {
				got, want := cgroupOf(burner, controller), cgroupOf(strconv.Itoa(c.Pid), controller)
				if got == "" || got != want {
					t.Errorf("burner in %s cgroup %q, product-service-1 in %q", controller, got, want)
				}
				if controller == cgroup.Controller && got == "/" {
					t.Errorf("the burner is in the root %s cgroup, not a container's", controller)
				}
			}
		}
	}
	eventually(t, 10*time.Second, "the burner uses CPU", func() error {
		b, err := os.ReadFile("/proc/" + burner + "/stat")
		if err != nil {
			return err
		}
		f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+1:])
		if f[11] == "0" { // utime
			return fmt.Errorf("utime 0")
		}
		return nil
	})
	if err := cmd.Wait(); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Errorf("runner: %v\n%s", err, b)
	}
	if files, _ := filepath.Glob(filepath.Join(volume, ".weft-fault-*")); len(files) != 0 {
		t.Errorf("fill files left: %v", files)
	}
	s.noLeftovers(t, "fill-disk and burn-cpu")
}

func chaosInterrupt(t *testing.T, s chaosShop) {
	cmd, logPath := startRunner(t, s, `
title: interrupted
method:
  - type: action
    name: loss
    provider: {type: weft, func: loss, arguments: {from: host1, to: host2, percent: 50, duration: 60s}}
  - type: action
    name: latency
    provider: {type: weft, func: latency, arguments: {target: inventory-service, delay: 50ms, duration: 60s}}
    pauses: {after: 60}
rollbacks:
  - type: action
    name: rolled-back
    provider: {type: process, path: "true"}
`)
	eventually(t, 20*time.Second, "both faults applied", func() error {
		b, _ := os.ReadFile(logPath)
		if !strings.Contains(string(b), "Pausing after") {
			return fmt.Errorf("runner: %s", b)
		}
		return nil
	})
	if len(s.leftovers(t)) == 0 {
		t.Fatal("no fault in place before the interrupt")
	}
	interrupted := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	b, _ := os.ReadFile(logPath)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("interrupted run: %v, want exit 1\n%s", err, b)
	}
	if !strings.Contains(string(b), "VERDICT: FAILED") || !strings.Contains(string(b), "method: interrupted") {
		t.Errorf("verdict of an interrupted run:\n%s", b)
	}
	j := checkJournalShape(t, filepath.Join(filepath.Dir(logPath), "journal.json"), "interrupted")
	if rbs, _ := j["rollbacks"].([]any); len(rbs) != 1 {
		t.Errorf("rollbacks after Ctrl-C: %v", j["rollbacks"])
	}
	s.noLeftovers(t, "Ctrl-C")
	if t.Failed() {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			t.Logf("runner: %s", line) // line by line, as make's filter keeps them
		}
	}
	t.Logf("every fault gone %s after Ctrl-C (durations 60s)", time.Since(interrupted).Round(100*time.Millisecond))
}

func containerIP(t *testing.T, s chaosShop, container string) string {
	t.Helper()
	for _, c := range s.status(t).Containers {
		if c.Container == container {
			return c.IP.String()
		}
	}
	t.Fatalf("no container %s", container)
	return ""
}

var pingLoss = regexp.MustCompile(`([\d.]+)% packet loss`)
var pingAvg = regexp.MustCompile(`= [\d.]+/([\d.]+)/`)

func chaosMeasured(t *testing.T, s chaosShop) {
	product, inventory := containerIP(t, s, "product-service-1"), containerIP(t, s, "inventory-service-1")
	cmd, logPath := startRunner(t, s, `
title: measured
method:
  - type: action
    name: loss
    provider: {type: weft, func: loss, arguments: {from: gateway-2, to: product-service, percent: 30, duration: 30s}}
  - type: action
    name: latency
    provider: {type: weft, func: latency, arguments: {target: inventory-service, to: gateway-2, delay: 100ms, duration: 30s, wait: true}}
`)
	eventually(t, 20*time.Second, "both faults applied", func() error {
		b, _ := os.ReadFile(logPath)
		if n := len(regexp.MustCompile(`fault [0-9a-f]+: `).FindAll(b, -1)); n < 2 {
			return fmt.Errorf("runner: %s", b)
		}
		return nil
	})
	r := s.exec(t, "gateway-2", "ping", "-q", "-n", "-c", "1200", "-i", "0.002", "-W", "1", product)
	m := pingLoss.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("ping: %s %s", r.stdout, r.stderr)
	}
	var loss float64
	fmt.Sscan(m[1], &loss)
	t.Logf("loss asked 30%%, measured %.1f%% over 1200 packets (gateway-2 -> product-service)", loss)
	if loss < 25 || loss > 35 {
		t.Errorf("loss %.1f%% not within 30±5", loss)
	}
	r = s.exec(t, "gateway-2", "ping", "-q", "-n", "-c", "20", "-i", "0.05", inventory)
	a := pingAvg.FindStringSubmatch(r.stdout)
	if a == nil {
		t.Fatalf("ping: %s %s", r.stdout, r.stderr)
	}
	var avg float64
	fmt.Sscan(a[1], &avg)
	t.Logf("latency asked 100ms, measured round trip %.1fms (gateway-2 -> inventory-service)", avg)
	if avg < 80 || avg > 120 {
		t.Errorf("round trip %.1fms not within 20%% of 100ms", avg)
	}
	// Not beyond the targets: gateway-2 -> order-service is neither lossy nor slow.
	r = s.exec(t, "gateway-2", "ping", "-q", "-n", "-c", "200", "-i", "0.002", containerIP(t, s, "order-service-1"))
	if m := pingLoss.FindStringSubmatch(r.stdout); m == nil || m[1] != "0" {
		t.Errorf("gateway-2 -> order-service affected: %s", r.stdout)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	s.noLeftovers(t, "the measured faults")
}

func chaosKillAgent(t *testing.T, s chaosShop) {
	agentPid := func() string {
		// agent.pid holds "pid start-time" (runtime.PidFile).
		b, _ := os.ReadFile(filepath.Join(naming.HostStateDir(naming.DefaultStateRoot, s.name, "host2"), "agent.pid"))
		if f := strings.Fields(string(b)); len(f) > 0 {
			return f[0]
		}
		return ""
	}
	alive := func(pid string) bool { _, err := os.Stat("/proc/" + pid); return pid != "" && err == nil }
	before := agentPid()
	// Every status host2's containers get in the store, from before the kill
	// until 3 s after the new agent runs: the new agent adopts them as they
	// are, so none may turn "starting" (out of DNS and the gateways).
	st := s.connectStore(t)
	defer st.Close()
	wctx, stopWatch := context.WithCancel(context.Background())
	notReady := make(chan string, 1)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		changes := st.Changes(wctx)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for wctx.Err() == nil {
			rctx, cancel := context.WithTimeout(wctx, 2*time.Second)
			all, err := st.Statuses(rctx)
			cancel()
			for _, c := range all {
				if err == nil && c.Host == "host2" && !c.Ready() {
					select {
					case notReady <- fmt.Sprintf("%s %s/%s: %s", c.Container, c.State, c.Health, c.Message):
					default:
					}
				}
			}
			select {
			case <-wctx.Done():
			case <-changes:
			case <-tick.C:
			}
		}
	}()
	defer func() { stopWatch(); <-watched }()
	cmd, logPath := startRunner(t, s, `
title: kill an agent
method:
  - type: action
    name: kill-agent
    provider: {type: weft, func: kill-agent, arguments: {host: host2, duration: 3s}}
    pauses: {after: 1}
  - type: probe
    name: shop-containers-keep-running
    tolerance: true
    provider: {type: weft, func: service-healthy, arguments: {service: order-service}}
`)
	eventually(t, 20*time.Second, "host2's agent killed", func() error {
		if alive(before) {
			return fmt.Errorf("agent %s still alive", before)
		}
		return nil
	})
	if err := cmd.Wait(); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("runner: %v\n%s", err, b)
	}
	eventually(t, 10*time.Second, "host2's agent running again", func() error {
		if now := agentPid(); now == before || !alive(now) {
			return fmt.Errorf("agent pid %s (was %s)", now, before)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // the window the watcher above covers
	stopWatch()
	<-watched
	select {
	case c := <-notReady:
		t.Errorf("a container on host2 was reported not ready across its agent's restart: %s", c)
	default:
	}
	s.noLeftovers(t, "kill-agent")
}
