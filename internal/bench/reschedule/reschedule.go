// Package reschedule is `weft bench reschedule`: how long a service is
// unreachable when its host crashes, until weft has moved it to a live host,
// and the share of requests that fail meanwhile; against Docker Swarm's
// node-down detection, a published figure.
package reschedule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
	"github.com/weft-dev/weft/internal/bench/report"
	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/spec"
)

// Options of one run. Zero fields take the defaults in parentheses.
type Options struct {
	Rounds     int           // crashes, each on a fresh cluster (3)
	Interval   time.Duration // between the probe's requests (100ms)
	Limit      time.Duration // longest wait for the service after a crash (60s)
	ResultsDir string        // where the CLI saves the report; Run itself writes nothing there
	Log        *slog.Logger  // progress (discarded)
	Weft       string        // path of the weft binary (required)
	Hello      string        // path of the hello backend (bin/hello next to Weft)
	WorkDir    string        // where the cluster files go (a temporary folder)
	StateRoot  string        // weft's state root (naming.DefaultStateRoot)
}

// Swarm's published figure: swarmkit's dispatcher expects a heartbeat every
// 5s (DefaultHeartBeatPeriod) and marks a node down after the period times
// defaultGracePeriodMultiplier = 3 without one (moby/swarmkit,
// manager/dispatcher/dispatcher.go); only then are its tasks rescheduled.
const swarmNodeDownSeconds = 15.0

// hold is how long requests must keep succeeding before a round ends.
const hold = 3 * time.Second

func (o *Options) defaults() error {
	if o.Rounds == 0 {
		o.Rounds = 3
	}
	if o.Interval == 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.Limit == 0 {
		o.Limit = 60 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Hello == "" && o.Weft != "" {
		o.Hello = filepath.Join(filepath.Dir(o.Weft), "hello")
	}
	var problems []error
	if o.Rounds < 1 || o.Rounds > 20 {
		problems = append(problems, fmt.Errorf("rounds = %d: give 1 to 20", o.Rounds))
	}
	if o.Interval < 10*time.Millisecond {
		problems = append(problems, fmt.Errorf("interval %s: give at least 10ms", o.Interval))
	}
	if o.Limit < 10*time.Second || o.Limit > 5*time.Minute {
		problems = append(problems, fmt.Errorf("limit %s: give 10s to 5m", o.Limit))
	}
	if o.Weft == "" {
		problems = append(problems, errors.New("the path of the weft binary is missing; pass Options.Weft"))
	}
	if _, err := os.Stat(o.Hello); o.Hello != "" && err != nil {
		problems = append(problems, fmt.Errorf("the hello backend %s is missing: run make build, or pass its path", o.Hello))
	}
	return errors.Join(problems...)
}

// round is one crash and what the probe saw.
type round struct {
	outage
	timeline
	MovedTo string
}

// maxInFlight bounds the probe's concurrent requests (each has a timeout of
// a second, so at most about maxInFlight per second while nothing answers).
const maxInFlight = 16

// prober sends one request per tick without waiting for the previous one
// (an open loop), so an outage does not slow the sampling down.
type prober struct {
	client   *http.Client
	url      string
	inflight chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	got      []sample
}

func (p *prober) send() {
	at := time.Now()
	select {
	case p.inflight <- struct{}{}:
	default:
		p.record(sample{at: at, done: at}) // too many outstanding: counts as failed
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { <-p.inflight }()
		s := sample{at: at}
		resp, err := p.client.Get(p.url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			s.ok = resp.StatusCode == http.StatusOK
		}
		s.done = time.Now()
		p.record(s)
	}()
}

func (p *prober) record(s sample) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, s)
}

// samples are the finished requests so far, by send time.
func (p *prober) samples() []sample {
	p.mu.Lock()
	out := slices.Clone(p.got)
	p.mu.Unlock()
	slices.SortFunc(out, func(x, y sample) int { return x.at.Compare(y.at) })
	return out
}

// wait lets every outstanding request finish and returns all samples.
func (p *prober) wait() []sample {
	p.wg.Wait()
	return p.samples()
}

// Run crashes host1 once per round, each time on a fresh cluster, while a
// probe sends GET / through the published loopback port, and reports how
// long until requests succeed again and how many failed.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("weft bench reschedule: %w", err)
	}
	started := time.Now()
	workDir := o.WorkDir
	if workDir == "" {
		dir, err := os.MkdirTemp("", "weft-bench-reschedule-")
		if err != nil {
			return nil, fmt.Errorf("making a work folder: %w", err)
		}
		defer os.RemoveAll(dir)
		workDir = dir
	}
	loadStart, busyStart := labrun.BusyNote("at the start")
	var rounds []round
	for i := range o.Rounds {
		r, err := runRound(ctx, o, workDir)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", i+1, err)
		}
		o.Log.Info("reschedule round", "round", i+1, "served_again_s", r.ServedIn.Seconds(), "requests", r.Requests, "failed", r.Failed, "moved_to", r.MovedTo)
		rounds = append(rounds, r)
	}
	rep := buildReport(rounds)
	loadEnd, busyEnd := labrun.BusyNote("at the end")
	rep.Values["loadavg_start"], rep.Values["loadavg_end"] = loadStart, loadEnd
	for _, note := range []string{busyStart, busyEnd} {
		if note != "" {
			rep.Notes = append(rep.Notes, note)
		}
	}
	rep.Started = started
	rep.Machine = report.ThisMachine()
	return rep, nil
}

func runRound(ctx context.Context, o Options, workDir string) (round, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return round{}, err
	}
	name := "br" + labrun.RandomSuffix(4)
	cluster, err := labrun.Up(ctx, o.Weft, workDir, name, clusterFile(name, o.Hello, port), o.Log)
	if err != nil {
		return round{}, err
	}
	defer func() {
		if err := cluster.Down(); err != nil {
			o.Log.Error("removing the bench cluster; run weft down by hand", "cluster", cluster.Name, "err", err)
		}
	}()
	l := &lab.Lab{StateRoot: o.StateRoot, Log: o.Log}
	// Thaw before Down, also when the round fails.
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.Restore(rctx, name, "host1"); err != nil {
			o.Log.Warn("restoring host1", "cluster", name, "err", err)
		}
	}()

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	if err := waitServing(ctx, client, url, 30*time.Second); err != nil {
		return round{}, err
	}

	p := &prober{client: client, url: url, inflight: make(chan struct{}, maxInFlight)}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for baseline := time.Now().Add(time.Second); time.Now().Before(baseline); <-tick.C {
		p.send()
	}
	crash := time.Now()
	if err := l.Crash(ctx, name, "host1"); err != nil {
		return round{}, err
	}
	o.Log.Info("crashed host1", "cluster", name)
	for deadline := crash.Add(o.Limit); time.Now().Before(deadline) && !settled(p.samples(), crash, hold); {
		select {
		case <-ctx.Done():
			return round{}, ctx.Err()
		case <-tick.C:
		}
		p.send()
	}
	samples := p.wait()
	r := round{outage: analyse(samples, crash), timeline: leaderTimeline(o.StateRoot, name, []string{"host2", "host3"}, crash)}
	if !r.Recovered {
		return round{}, fmt.Errorf("GET %s was not served again within %s of the crash (%d of %d requests failed)", url, o.Limit, r.Failed, r.Requests)
	}
	if st, err := cluster.Status(ctx); err == nil {
		for _, c := range st.Containers {
			if c.Container == "web-1" {
				r.MovedTo = c.Host
			}
		}
	}
	return r, nil
}

func waitServing(ctx context.Context, client *http.Client, url string, limit time.Duration) error {
	return labrun.Poll(ctx, limit, "GET "+url+" answers 200", func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// clusterFile: web (the hello backend, pinned to 10.10.0.5) on host1, one
// gateway each on host2 and host3 published on 127.0.0.1:port. Crashing
// host1 takes web away; the gateways survive, so the figure is the
// rescheduling of web alone.
func clusterFile(name, hello string, port int) string {
	return fmt.Sprintf(`version: 1
name: %s
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {s1: 192.168.1.0/24, s2: 192.168.2.0/24, s3: 192.168.3.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: s1}
  - {name: host2, subnet: s2}
  - {name: host3, subnet: s3}
routes:
  - {prefix: /, service: web, timeout: 1s, retries: 0}
publish:
  - {listen: "127.0.0.1:%d", services: [gateway]}
services:
  web:
    command: [%q, -listen, ":8080", -name, web]
    host: host1
    ip: 10.10.0.5
    port: 8080
    health: {http: /health, interval: 200ms}
  gateway:
    command: [weft, gateway]
    replicas: 2
    hosts: [host2, host3]
    port: 80
    health: {http: /health, interval: 500ms}
`, name, port, hello)
}

func buildReport(rounds []round) *report.Report {
	r := &report.Report{
		Name:    "reschedule",
		Tool:    fmt.Sprintf("built-in Go HTTP/1.1 client, open loop, a new connection per request, at most %d in flight, 1s timeout", maxInFlight),
		Columns: []string{"round", "host1 seen down (s)", "web-1 moved (s)", "served again after (s)", "requests", "failed", "failed share", "moved to"},
		Values:  map[string]any{},
	}
	var served, shares []float64
	var steps []map[string]float64
	for i, x := range rounds {
		served = append(served, x.ServedIn.Seconds())
		shares = append(shares, x.FailedShare())
		r.Rows = append(r.Rows, []string{strconv.Itoa(i + 1), secs(x.SeenDown), secs(x.Moved), secs(x.ServedIn),
			strconv.Itoa(x.Requests), strconv.Itoa(x.Failed), fmt.Sprintf("%.3f", x.FailedShare()), x.MovedTo})
		steps = append(steps, map[string]float64{"seen_down_s": x.SeenDown.Seconds(), "moved_s": x.Moved.Seconds()})
	}
	medServed, medShare := labrun.Median(slices.Clone(served)), labrun.Median(slices.Clone(shares))
	after := spec.DefaultRescheduleAfter.Seconds()
	r.Rows = append(r.Rows,
		[]string{"median", "", "", fmt.Sprintf("%.2f", medServed), "", "", fmt.Sprintf("%.3f", medShare), ""},
		[]string{"goal: reschedule_after + 3s", "", "", fmt.Sprintf("%.2f", after+3), "", "", "", ""},
		[]string{"Docker Swarm node-down detection (published, not measured)", fmt.Sprintf("%.2f", swarmNodeDownSeconds), "", "", "", "", "", ""},
	)
	r.Values["served_again_s"] = served
	r.Values["steps"] = steps
	r.Values["failed_share"] = shares
	r.Values["served_again_median_s"] = medServed
	r.Values["failed_share_median"] = medShare
	r.Values["reschedule_after_s"] = after
	r.Values["swarm_node_down_s"] = swarmNodeDownSeconds
	r.Notes = append(r.Notes,
		"path: GET / on the published 127.0.0.1 port -> weft publish -> a gateway on host2 or host3 -> web-1 (hello, pinned 10.10.0.5); host1 (web-1's host) crashes: all its processes frozen, its router leg down",
		"seen down, moved: when the leader noticed host1's registration gone and when it wrote web-1's new assignment, from its agent's log (0 = not found)",
		fmt.Sprintf("served again after = from the crash to the answer of the first request that succeeded after the last failed one; it includes the host's lease running out, reschedule_after (%.0fs), the start and first health check of web-1 on its new host", after),
		"Swarm: swarmkit's dispatcher marks a node down after 3 missed 5s heartbeats (moby/swarmkit manager/dispatcher/dispatcher.go); rescheduling starts after that, so its figure is a lower bound for Swarm's outage",
	)
	if medServed > after+3 {
		r.Notes = append(r.Notes, fmt.Sprintf("the median %.2fs misses the goal of %.0fs", medServed, after+3))
	}
	return r
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
