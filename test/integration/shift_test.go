package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/gateway"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/shift"
)

// shiftTmpl: two gateways (host1, host2), both published on 127.0.0.1 so
// the load reaches both; v1 and v2 of a hello backend on host3; the route
// weighs v1 100, v2 0. Three managers, so killing the leader's agent (and
// its etcd member) keeps a quorum.
const shiftTmpl = `version: 1
name: NAME
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24, c: 192.168.3.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a, roles: [manager]}
  - {name: host2, subnet: b, roles: [manager]}
  - {name: host3, subnet: c, roles: [manager]}
routes:
  - prefix: /
    backends:
      - {service: v1, weight: 100}
      - {service: v2, weight: 0}
publish:
  - {listen: "127.0.0.1:PUBPORT", services: [gateway-1, gateway-2]}
services:
  gateway-1: {command: [weft, gateway], host: host1, port: 80, health: {http: /health, interval: 200ms}}
  gateway-2: {command: [weft, gateway], host: host2, port: 80, health: {http: /health, interval: 200ms}}
  v1:
    command: [HELLO, -listen, ":8080", -name, web, -version, v1]
    host: host3
    port: 8080
    health: {http: /health, interval: 200ms}
  v2:
    command: [HELLO, -listen, ":8080", -name, web, -version, v2V2FLAGS]
    host: host3
    port: 8080
    stop_grace: 2s
    health: {http: /health, interval: 200ms}
    update: {order: start-first, monitor: 1s}
`

// shiftRate is the load of the shift tests, requests/s.
const shiftRate = 100

// shiftLab is the cluster of the shift tests.
type shiftLab struct {
	cluster
	url string
}

func (l shiftLab) shifts(t *testing.T) api.ShiftsAnswer {
	t.Helper()
	var ans api.ShiftsAnswer
	out := mustWeft(t, "shift", "status", "--json", "-f", l.cluster.file)
	if err := json.Unmarshal([]byte(out), &ans); err != nil {
		t.Fatalf("decoding weft shift status --json: %v\n%s", err, out)
	}
	return ans
}

// gatewayWeights reads a gateway's live weights of "/" from its admin API,
// dialled inside the gateway container's namespace.
func (l shiftLab) gatewayWeights(ctx context.Context, host, container string) (string, error) {
	ns := naming.ContainerNetns(l.name, host, container)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nsthread.DialNamed(ctx, ns, &net.Dialer{Timeout: time.Second}, network, addr)
		}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+gateway.DefaultAdminListen+gateway.AdminPathWeights, nil)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ws map[string][]gateway.Backend
	if err := json.NewDecoder(resp.Body).Decode(&ws); err != nil {
		return "", err
	}
	var out []model.Weight
	for _, b := range ws["/"] {
		out = append(out, model.Weight{Service: b.Service, Weight: b.Weight})
	}
	return shift.FormatWeights(out), nil
}

// watchGateways polls both gateways' live weights until stop and returns,
// per gateway, when each distinct weights first showed.
func (l shiftLab) watchGateways(ctx context.Context) func() map[string]map[string]time.Time {
	seen := map[string]map[string]time.Time{"gateway-1-1": {}, "gateway-2-1": {}}
	hosts := map[string]string{"gateway-1-1": "host1", "gateway-2-1": "host2"}
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for gw := range seen {
		wg.Go(func() {
			for ctx.Err() == nil {
				if w, err := l.gatewayWeights(ctx, hosts[gw], gw); err == nil {
					mu.Lock()
					if _, ok := seen[gw][w]; !ok {
						seen[gw][w] = time.Now()
					}
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return func() map[string]map[string]time.Time {
		cancel()
		wg.Wait()
		return seen
	}
}

// versions sends n GETs and counts the answers by X-Version.
func (l shiftLab) versions(t *testing.T, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	client := &http.Client{Timeout: 5 * time.Second}
	for range n {
		resp, err := client.Get(l.url)
		if err != nil {
			t.Fatalf("GET %s: %v", l.url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out[resp.Header.Get("X-Version")]++
	}
	return out
}

// runShift runs weft shift with args and returns its output and exit code.
func (l shiftLab) runShift(t *testing.T, args ...string) result {
	t.Helper()
	return weft(t, append([]string{"shift", "/", "-f", l.cluster.file}, args...)...)
}

func checkHistory(t *testing.T, sh model.Shift) {
	t.Helper()
	step := 0
	for i, iv := range sh.Intervals {
		if iv.Step < step || iv.Step > step+1 || !iv.End.After(iv.Start) || len(iv.Gateways) == 0 {
			t.Errorf("interval %d out of order or incomplete: %+v", i, iv)
		}
		step = iv.Step
	}
	if !model.ShiftDone(sh.State) || sh.Current != nil || sh.Ended.IsZero() {
		t.Errorf("shift not ended cleanly: state %s, current %+v, ended %v", sh.State, sh.Current, sh.Ended)
	}
}

// TestShift shifts a route between two versions of a backend under a
// steady load through the published port: a version that fails one
// request in five and a slow one are rolled back at the first step, a
// healthy one is promoted step by step with no failed request, `weft up`
// of the unchanged file keeps the promotion and says so, and a shift whose
// leader's agent is killed mid-way ends consistently.
func TestShift(t *testing.T) {
	port := freePort(t)
	name := uniqueName("sh")
	file := func(v2flags string) string {
		return strings.NewReplacer("PUBPORT", fmt.Sprint(port), "V2FLAGS", v2flags).Replace(shiftTmpl)
	}
	l := shiftLab{cluster: writeCluster(t, name, file(", -fail-every, \"5\"")), url: fmt.Sprintf("http://127.0.0.1:%d/", port)}
	upCluster(t, l.cluster)
	fast := []string{"--steps", "10,50,100", "--interval", "2s", "--threshold", "1", "--max-error-rate", "1%", "--max-p99", "300ms"}

	t.Run("bad flags and dry run", func(t *testing.T) {
		r := l.runShift(t, "--to", "v2", "--steps", "10,50")
		if r.code != 2 || !strings.Contains(r.stderr, "--steps") {
			t.Errorf("--steps 10,50: exit %d, %s; want 2 naming --steps", r.code, r.stderr)
		}
		r = l.runShift(t, "--to", "v3")
		if r.code == 0 || !strings.Contains(r.stderr, "--to") {
			t.Errorf("--to v3: exit %d, %s; want an error naming --to", r.code, r.stderr)
		}
		out := mustWeft(t, append([]string{"shift", "/", "-f", l.cluster.file, "--to", "v2", "--dry-run"}, fast...)...)
		for _, want := range []string{"v1=90 v2=10", "v1=50 v2=50", "v1=0 v2=100", "p99 <= 300ms", "nothing changed"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry run does not say %q:\n%s", want, out)
			}
		}
		if n := len(l.shifts(t).Shifts); n != 0 {
			t.Errorf("the dry run recorded %d shifts", n)
		}
	})

	t.Run("one in five failing is rolled back at the first step", func(t *testing.T) {
		load := startLoad(l.url, shiftRate, time.Minute)
		r := l.runShift(t, append([]string{"--to", "v2"}, fast...)...)
		ok, failed, errs := load.finish(false)
		sh := l.shifts(t).Shifts["/"]
		t.Logf("weft shift (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
		if r.code != 1 || sh.State != model.ShiftRolledBack || len(sh.Intervals) != 1 || sh.Intervals[0].Step != 0 {
			t.Fatalf("exit %d, state %s after %d intervals; want rolled back after the first", r.code, sh.State, len(sh.Intervals))
		}
		checkHistory(t, sh)
		iv := sh.Intervals[0]
		if !strings.Contains(iv.Reason, "error rate") || iv.Total.Errors == 0 {
			t.Errorf("interval: %+v, want the error rate to fail it", iv)
		}
		// Clients saw v2's 500s only while it had its 10 %: at most all of
		// v2's share of the requests while the step lasted (plus the second
		// the gateways take to apply the rollback).
		atStep := sh.Ended.Sub(sh.Started) + time.Second
		bound := int64(math.Ceil(shiftRate * atStep.Seconds() * 0.10))
		t.Logf("failed client requests: %d of %d (%v); v2 answered %d with %d errors; bound weight x interval x rate = 10%% x %.1fs x %d/s = %d",
			failed, ok+failed, errs, iv.Total.Requests, iv.Total.Errors, atStep.Seconds(), shiftRate, bound)
		t.Logf("rolled back %s after the step began (interval x threshold = 2s)", sh.Ended.Sub(sh.Started).Round(time.Millisecond))
		if failed == 0 || failed > bound {
			t.Errorf("%d client requests failed, want 1..%d", failed, bound)
		}
		if ws := l.shifts(t).Weights; len(ws) != 0 {
			t.Errorf("live weights after the rollback: %v, want none (the file's)", ws)
		}
		if v := l.versions(t, 20); v["v2"] != 0 {
			t.Errorf("after the rollback v2 still answers: %v", v)
		}
	})

	t.Run("slow is rolled back", func(t *testing.T) {
		l.rewrite(t, file(", -delay, 400ms"))
		mustWeft(t, "up", "-f", l.cluster.file)
		load := startLoad(l.url, shiftRate, time.Minute)
		r := l.runShift(t, append([]string{"--to", "v2"}, fast...)...)
		ok, failed, _ := load.finish(false)
		sh := l.shifts(t).Shifts["/"]
		t.Logf("weft shift (exit %d):\n%s%s\nload: %d requests, %d failed", r.code, r.stdout, r.stderr, ok+failed, failed)
		if r.code != 1 || sh.State != model.ShiftRolledBack || len(sh.Intervals) != 1 || !strings.Contains(sh.Intervals[0].Reason, "p99") {
			t.Fatalf("exit %d, state %s, intervals %+v; want rolled back on p99 after one", r.code, sh.State, sh.Intervals)
		}
		checkHistory(t, sh)
		t.Logf("rolled back %s after the step began (interval x threshold = 2s)", sh.Ended.Sub(sh.Started).Round(time.Millisecond))
	})

	t.Run("healthy is promoted step by step", func(t *testing.T) {
		l.rewrite(t, file(""))
		mustWeft(t, "up", "-f", l.cluster.file)
		load := startLoad(l.url, shiftRate, time.Minute)
		stop := l.watchGateways(context.Background())
		start := time.Now()
		r := l.runShift(t, append([]string{"--to", "v2"}, fast...)...)
		secs := time.Since(start).Seconds()
		seen := stop()
		ok, failed, errs := load.finish(false)
		sh := l.shifts(t).Shifts["/"]
		t.Logf("weft shift (exit %d, %.1fs):\n%s%s\nload: %d requests, %d failed %v", r.code, secs, r.stdout, r.stderr, ok+failed, failed, errs)
		if r.code != 0 || sh.State != model.ShiftPromoted || len(sh.Intervals) != 3 {
			t.Fatalf("exit %d, state %s after %d intervals; want promoted after 3", r.code, sh.State, len(sh.Intervals))
		}
		checkHistory(t, sh)
		for i, iv := range sh.Intervals {
			if !iv.Pass || iv.Step != i || iv.Total.Requests == 0 || len(iv.Gateways) != 2 {
				t.Errorf("interval %d: %+v", i, iv)
			}
		}
		if failed != 0 {
			t.Errorf("%d requests failed during the promotion: %v", failed, errs)
		}
		// Each step's weights reached both gateways within 1 s of the
		// leader's decision (the step's event).
		for _, ev := range sh.Events {
			var step int
			if _, err := fmt.Sscanf(ev.Message, "step %d/", &step); err != nil {
				continue
			}
			want := shift.FormatWeights(shift.WeightsAt(sh.From, "v2", sh.Steps[step-1]))
			for gw, times := range seen {
				at, ok := times[want]
				if !ok {
					t.Errorf("%s never showed %s (saw %v)", gw, want, times)
					continue
				}
				lag := at.Sub(ev.At)
				t.Logf("step %d: %s applied %s after the decision", step, gw, lag.Round(time.Millisecond))
				if lag > time.Second {
					t.Errorf("step %d: %s applied %s %s after the decision, want within 1s", step, gw, want, lag)
				}
			}
		}
		if v := l.versions(t, 20); v["v2"] != 20 {
			t.Errorf("after the promotion: %v, want every answer from v2", v)
		}
		out := mustWeft(t, "up", "-f", l.cluster.file)
		if !strings.Contains(out, "v1=0 v2=100") || !strings.Contains(out, "stay") {
			t.Errorf("weft up of the unchanged file does not report the promoted weights staying:\n%s", out)
		}
		if v := l.versions(t, 20); v["v2"] != 20 {
			t.Errorf("weft up of the unchanged file undid the promotion: %v", v)
		}
	})

	t.Run("killing the leader's agent mid-shift", func(t *testing.T) {
		load := startLoad(l.url, shiftRate, 2*time.Minute)
		out := mustWeft(t, "shift", "/", "-f", l.cluster.file, "--to", "v1", "--steps", "25,50,75,100", "--interval", "2s", "--threshold", "1", "--detach")
		t.Logf("%s", out)
		var sh model.Shift
		eventually(t, 30*time.Second, "the shift to reach its second step", func() error {
			sh = l.shifts(t).Shifts["/"]
			if sh.To != "v1" || sh.State != model.ShiftRunning || sh.Step < 1 {
				return fmt.Errorf("%s at step %d", sh.State, sh.Step+1)
			}
			return nil
		})
		leader := findHost(t, l.status(t), sh.Leader)
		if err := syscall.Kill(leader.AgentPid, syscall.SIGKILL); err != nil {
			t.Fatalf("killing %s's agent (pid %d): %v", leader.Name, leader.AgentPid, err)
		}
		t.Logf("killed the agent of %s (pid %d), leader of the shift at step %d", leader.Name, leader.AgentPid, sh.Step+1)
		eventually(t, time.Minute, "the shift to end", func() error {
			st, err := exec.Command(weftBin, "shift", "status", "--json", "-f", l.cluster.file).Output()
			if err != nil {
				return err // the agents may be changing leader
			}
			var ans api.ShiftsAnswer
			if err := json.Unmarshal(st, &ans); err != nil {
				return err
			}
			sh = ans.Shifts["/"]
			if !model.ShiftDone(sh.State) {
				return fmt.Errorf("%s at step %d", sh.State, sh.Step+1)
			}
			return nil
		})
		ok, failed, errs := load.finish(false)
		human := mustWeft(t, "shift", "status", "/", "-f", l.cluster.file)
		t.Logf("after the kill:\n%s\nload: %d requests, %d failed %v", human, ok+failed, failed, errs)
		if sh.State != model.ShiftPromoted {
			t.Fatalf("state %s: %s; want promoted", sh.State, sh.Message)
		}
		checkHistory(t, sh)
		for _, ev := range sh.Events {
			if strings.Contains(ev.Message, "resumed") {
				t.Logf("event: %s", ev.Message)
			}
		}
		if w := l.shifts(t).Weights["/"]; shift.FormatWeights(w.Backends) != "v1=100 v2=0" {
			t.Errorf("live weights %v, want v1=100 v2=0", w)
		}
		eventually(t, 5*time.Second, "both gateways on v1=100 v2=0", func() error {
			for gw, host := range map[string]string{"gateway-1-1": "host1", "gateway-2-1": "host2"} {
				if w, err := l.gatewayWeights(context.Background(), host, gw); err != nil || w != "v1=100 v2=0" {
					return fmt.Errorf("%s: %s %v", gw, w, err)
				}
			}
			return nil
		})
		if failed != 0 {
			t.Errorf("%d requests failed while the leader's agent was killed mid-shift: %v", failed, errs)
		}
	})
}
