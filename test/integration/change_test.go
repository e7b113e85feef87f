package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
)

// changeTmpl is a small cluster for changes under load: one gateway
// published on 127.0.0.1, and a hello backend "web" whose replicas,
// command and env the tests change.
const changeTmpl = `version: 1
name: NAME
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a, roles: [manager]}
  - {name: host2, subnet: b, roles: [worker]}
routes:
  - {prefix: /, service: web}
publish:
  - {listen: "127.0.0.1:PUBPORT", services: [gateway]}
services:
  gateway:
    command: [weft, gateway]
    host: host1
    port: 80
    health: {http: /health, interval: 200ms}
  web:
    command: [WEBCMD]
    replicas: REPLICAS
    port: 8080
    env: {VERSION: "VERSIONV"}
    stop_grace: 3s
    health: {http: /health, interval: 200ms}
    update: {parallelism: 1, monitor: 1s, order: ORDER, failure_action: rollback}
`

// changeLoadSeconds is how long the scale test keeps its load at least:
// bounded for make test; WEFT_CHANGE_LOAD=60s runs the full minute.
func changeLoadSeconds(t *testing.T) time.Duration {
	if v := os.Getenv("WEFT_CHANGE_LOAD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 5*time.Minute {
			t.Fatalf("WEFT_CHANGE_LOAD=%q: write a duration up to 5m, e.g. 60s", v)
		}
		return d
	}
	return 20 * time.Second
}

// steadyLoad sends GETs at a fixed rate through the published port and
// counts every request that failed or did not answer 200.
type steadyLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stop       context.CancelFunc
	done       chan struct{}
}

// maxLoadRequests bounds one load by count as well as by time.
const maxLoadRequests = 200 * 300

func startLoad(url string, rate int, limit time.Duration) *steadyLoad {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	l := &steadyLoad{stop: cancel, done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	go func() {
		defer close(l.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		// Paced by schedule, not by ticks: a tick lost to a busy machine
		// is made up at the next one, so the rate holds.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		sem := make(chan struct{}, 128)
		begin := time.Now()
		for sent := 0; sent < maxLoadRequests; sent++ {
			for sent >= int(time.Since(begin).Seconds()*float64(rate)) {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
			if ctx.Err() != nil {
				return
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				resp, err := client.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 5 {
						l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
					}
					l.mu.Unlock()
					return
				}
				l.ok.Add(1)
			})
		}
	}()
	return l
}

// finish stops the load (at once, or when its time is up with wait) and
// returns the requests that succeeded and failed.
func (l *steadyLoad) finish(wait bool) (ok, failed int64, errs []string) {
	if !wait {
		l.stop()
	}
	<-l.done
	l.stop()
	return l.ok.Load(), l.failed.Load(), l.errs
}

func webContainers(st api.Status) []model.ContainerStatus { return containersOf(st, "web") }

func containersOf(st api.Status, service string) []model.ContainerStatus {
	var out []model.ContainerStatus
	for _, c := range st.Containers {
		if c.Service == service {
			out = append(out, c)
		}
	}
	return out
}

// scaleUnderLoad scales service 1 -> 5 -> 1 with weft scale while GETs of
// url go through the published port at rate per second, for at least
// changeLoadSeconds, and checks that none failed and that status says who
// scaled it.
func scaleUnderLoad(t *testing.T, c cluster, url, service string, rate int) {
	load := startLoad(url, rate, changeLoadSeconds(t)+2*time.Minute)
	start := time.Now()
	out := mustWeft(t, "scale", "-f", c.file, service+"=5")
	t.Logf("weft scale %s=5 (%.1fs): %s", service, time.Since(start).Seconds(), out)
	if got := len(containersOf(c.status(t), service)); got != 5 {
		t.Fatalf("after weft scale %s=5: %d containers, want 5", service, got)
	}
	mid := time.Now()
	out = mustWeft(t, "scale", "-f", c.file, service+"=1")
	t.Logf("weft scale %s=1 (%.1fs): %s", service, time.Since(mid).Seconds(), out)
	if rest := changeLoadSeconds(t) - time.Since(start); rest > 0 {
		time.Sleep(rest) // the load's own length: the issue asks for a minute of it
	}
	ok, failed, errs := load.finish(false)
	secs := time.Since(start).Seconds()
	t.Logf("scale %s 1->5->1: %d requests in %.1fs (%.0f/s), %d failed %v", service, ok+failed, secs, float64(ok+failed)/secs, failed, errs)
	if failed != 0 {
		t.Errorf("%d requests failed while scaling: %v", failed, errs)
	}
	// A machine shared with other builds may not keep the full rate;
	// under half of it the load would prove little.
	if float64(ok) < 0.5*float64(rate)*secs {
		t.Errorf("only %d requests answered in %.1fs: the load did not reach half of %d/s", ok, secs, rate)
	}
	st := c.status(t)
	if got := len(containersOf(st, service)); got != 1 {
		t.Errorf("after weft scale %s=1: %d containers, want 1", service, got)
	}
	sc := changeOf(st, service).Scale
	if sc == nil || sc.By != model.ScaledByCommand || sc.From != 5 || sc.To != 1 {
		t.Errorf("status says of %s's scale %+v, want 5 -> 1 by %q", service, sc, model.ScaledByCommand)
	}
	human := mustWeft(t, "status", "-f", c.file)
	if !strings.Contains(human, "scaled 5 -> 1") || !strings.Contains(human, model.ScaledByCommand) {
		t.Errorf("weft status does not say %s was scaled by the command:\n%s", service, human)
	}
}

func changeOf(st api.Status, service string) api.ServiceChange {
	for _, ch := range st.Changes {
		if ch.Service == service {
			return ch
		}
	}
	return api.ServiceChange{}
}

// TestLiveChanges scales a backend 1 -> 5 -> 1 and rolls its definition
// forward (start-first) and back (a broken command) under a steady 200
// requests/s through the published port, and counts failed requests: 0.
func TestLiveChanges(t *testing.T) {
	port := freePort(t)
	name := uniqueName("live-")
	order := "start-first"
	file := func(replicas int, cmd, version string) string {
		return strings.NewReplacer("PUBPORT", fmt.Sprint(port), "REPLICAS", fmt.Sprint(replicas),
			"WEBCMD", cmd, "VERSIONV", version, "ORDER", order).Replace(changeTmpl)
	}
	good := `HELLO, -listen, ":8080", -name, web`
	c := writeCluster(t, name, file(1, good, "1"))
	upCluster(t, c)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	const rate = 200

	t.Run("scale 1-5-1 under load", func(t *testing.T) { scaleUnderLoad(t, c, url, "web", rate) })

	t.Run("scale by the file", func(t *testing.T) {
		c.rewrite(t, file(3, good, "1"))
		mustWeft(t, "up", "-f", c.file)
		sc := changeOf(c.status(t), "web").Scale
		if sc == nil || sc.By != model.ScaledByFile || sc.To != 3 {
			t.Errorf("status says of web's scale %+v, want 1 -> 3 by %q", sc, model.ScaledByFile)
		}
	})

	t.Run("start-first update under load", func(t *testing.T) {
		before := map[string]int{}
		for _, w := range webContainers(c.status(t)) {
			before[w.Container] = w.Pid
		}
		c.rewrite(t, file(3, good, "2"))
		load := startLoad(url, rate, 3*time.Minute)
		start := time.Now()
		out := mustWeft(t, "up", "-f", c.file)
		ok, failed, errs := load.finish(false)
		secs := time.Since(start).Seconds()
		t.Logf("start-first update of 3 replicas: up took %.1fs; %d requests, %d failed %v\n%s", secs, ok+failed, failed, errs, out)
		if failed != 0 {
			t.Errorf("%d requests failed during the update: %v", failed, errs)
		}
		if !strings.Contains(out, "rolling update of web") {
			t.Errorf("weft up does not say web rolls:\n%s", out)
		}
		st := c.status(t)
		web := webContainers(st)
		if len(web) != 3 {
			t.Fatalf("after the update: %d web containers, want 3: %+v", len(web), web)
		}
		r := changeOf(st, "web").Rollout
		if r == nil || r.State != model.RolloutCompleted || r.Updated != 3 {
			t.Fatalf("rollout after the update: %+v, want completed with 3 updated", r)
		}
		for _, w := range web {
			if w.Def != r.To || !w.Ready() {
				t.Errorf("%s runs %s (ready %v), want %s", w.Container, w.Def, w.Ready(), r.To)
			}
			if before[w.Container] == w.Pid {
				t.Errorf("%s still runs pid %d from before the update", w.Container, w.Pid)
			}
		}
		again := mustWeft(t, "up", "-f", c.file)
		if !strings.Contains(again, "changes: 0\n") {
			t.Errorf("weft up of the unchanged file does not report 0 changes:\n%s", again)
		}
	})

	t.Run("stop-first update under load", func(t *testing.T) {
		order = "stop-first"
		defer func() { order = "start-first" }()
		c.rewrite(t, file(3, good, "3"))
		load := startLoad(url, rate, 3*time.Minute)
		start := time.Now()
		out := mustWeft(t, "up", "-f", c.file)
		ok, failed, errs := load.finish(false)
		t.Logf("stop-first update of 3 replicas: up took %.1fs; %d requests, %d failed %v", time.Since(start).Seconds(), ok+failed, failed, errs)
		if failed != 0 {
			t.Errorf("%d requests failed during the stop-first update: %v\n%s", failed, errs, out)
		}
		r := changeOf(c.status(t), "web").Rollout
		if r == nil || r.State != model.RolloutCompleted || r.Updated != 3 {
			t.Fatalf("rollout after the update: %+v, want completed with 3 updated", r)
		}
	})

	t.Run("interrupted up: the leader finishes the update", func(t *testing.T) {
		c.rewrite(t, file(3, good, "4"))
		cmd := execCmd(weftBin, "up", "-f", c.file)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "the rollout to start", func() error {
			if r := changeOf(c.status(t), "web").Rollout; r == nil || r.State != model.RolloutRolling || r.Started.Before(time.Now().Add(-time.Minute)) {
				return fmt.Errorf("rollout %+v", r)
			}
			return nil
		})
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		eventually(t, 2*time.Minute, "the update to complete without its weft up", func() error {
			st := c.status(t)
			r := changeOf(st, "web").Rollout
			if r == nil || r.State != model.RolloutCompleted {
				return fmt.Errorf("rollout %+v", r)
			}
			if web := webContainers(st); len(web) != 3 {
				return fmt.Errorf("%d web containers", len(web))
			}
			return nil
		})
		again := mustWeft(t, "up", "-f", c.file)
		if !strings.Contains(again, "changes: 0\n") {
			t.Errorf("weft up after the interrupted one does not report 0 changes:\n%s", again)
		}
	})

	t.Run("every agent killed mid-update: the restarted leader finishes it", func(t *testing.T) {
		c.rewrite(t, file(3, good, "5"))
		cmd := execCmd(weftBin, "up", "-f", c.file)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		load := startLoad(url, rate, 3*time.Minute)
		var st api.Status
		eventually(t, time.Minute, "the rollout to be under way", func() error {
			st = c.status(t)
			if r := changeOf(st, "web").Rollout; r == nil || r.State != model.RolloutRolling || r.Updated < 1 {
				return fmt.Errorf("rollout %+v", r)
			}
			return nil
		})
		for _, h := range st.Hosts {
			if h.AgentPid > 0 {
				if err := syscall.Kill(h.AgentPid, syscall.SIGKILL); err != nil {
					t.Fatalf("killing %s's agent: %v", h.Name, err)
				}
			}
		}
		killed := time.Now()
		eventually(t, 3*time.Minute, "the update to complete after every agent was killed", func() error {
			st, err := statusOf(c)
			if err != nil {
				return err // the agents are restarting
			}
			r := changeOf(st, "web").Rollout
			if r == nil || r.State != model.RolloutCompleted {
				return fmt.Errorf("rollout %+v", r)
			}
			for _, w := range webContainers(st) {
				if w.Def != r.To || !w.Ready() {
					return fmt.Errorf("%s on %s, ready %v", w.Container, w.Def, w.Ready())
				}
			}
			if web := webContainers(st); len(web) != 3 {
				return fmt.Errorf("%d web containers", len(web))
			}
			return nil
		})
		ok, failed, errs := load.finish(false)
		t.Logf("agents killed mid-update: completed %.1fs later; %d requests, %d failed %v", time.Since(killed).Seconds(), ok+failed, failed, errs)
	})

	t.Run("broken update rolls back", func(t *testing.T) {
		before := map[string]int{}
		for _, w := range webContainers(c.status(t)) {
			before[w.Container] = w.Pid
		}
		c.rewrite(t, file(3, `HELLO, -listen, ":bad", -name, web`, "5"))
		load := startLoad(url, rate, 3*time.Minute)
		start := time.Now()
		r := weft(t, "up", "-f", c.file)
		ok, failed, errs := load.finish(false)
		t.Logf("broken update: up exit %d after %.1fs; %d requests, %d failed %v\n%s%s", r.code, time.Since(start).Seconds(), ok+failed, failed, errs, r.stdout, r.stderr)
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "rolled back") {
			t.Errorf("weft up of a broken definition: exit %d, want non-zero saying it rolled back", r.code)
		}
		if failed != 0 {
			t.Errorf("%d requests failed while the broken update rolled back: %v", failed, errs)
		}
		st := c.status(t)
		roll := changeOf(st, "web").Rollout
		if roll == nil || roll.State != model.RolloutRolledBack {
			t.Fatalf("rollout: %+v, want rolled-back", roll)
		}
		eventually(t, 30*time.Second, "3 old web instances, the same processes, and no other", func() error {
			web := webContainers(c.status(t))
			if len(web) != 3 {
				return fmt.Errorf("%d web containers", len(web))
			}
			for _, w := range web {
				if before[w.Container] != w.Pid || !w.Ready() || w.Def != roll.From {
					return fmt.Errorf("%s: pid %d (was %d), def %s, ready %v", w.Container, w.Pid, before[w.Container], w.Def, w.Ready())
				}
			}
			return nil
		})
		c.rewrite(t, file(3, good, "5"))
		again := mustWeft(t, "up", "-f", c.file)
		if !strings.Contains(again, "changes: 0\n") {
			t.Errorf("weft up of the working file after the rollback does not report 0 changes:\n%s", again)
		}
	})
}
