// Package up is `weft bench up`: it brings up generated lab clusters of
// growing size with the weft binary, as a user would, and measures how
// bring-up, tear-down, memory, overlay state and the spread of a new
// container grow with the number of hosts.
package up

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
	"github.com/weft-dev/weft/internal/bench/report"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// Options says what to measure. Zero fields take the defaults shown.
type Options struct {
	Sizes          []int         // host counts, default 3, 10, 25, 50
	PerHost        int           // containers per host, default 4
	Additions      int           // new containers timed per size, default 10
	HostsPerSubnet int           // default 1: every host in its own /24 (at most 254 subnets)
	HealthInterval time.Duration // health check interval of the tiny service, default 200ms
	PollInterval   time.Duration // pause between probe attempts, default 20ms
	UpTimeout      time.Duration // how long one `weft up` may take, default 5m
	ProbeTimeout   time.Duration // how long a new container may take to spread, default 30s
	IdleWindow     time.Duration // how long the CPU use of the idle cluster is measured, default 5s
	ResultsDir     string        // where the plot goes (the caller saves the report there), default "bench-results"
	Weft           string        // path of the weft binary, required
	Hello          string        // path of bin/hello, required
	StateRoot      string        // weft's state root, default $WEFT_STATE_ROOT or /var/lib/weft
	Log            *slog.Logger  // default: discard
	// Compare measures every size also with the host firewall off
	// (`firewall: false`) and with user namespaces off (`userns: false`),
	// in Rounds rounds that each bring up one cluster per variant in turn,
	// so the three meet the same load; the table gets a variant column and
	// a row per size and variant with the ratio of the medians.
	Compare bool
	Rounds  int // rounds of a Compare run, default 3
}

// Columns of the report, one row per size.
var columns = []string{
	"hosts", "containers", "up_s", "down_s",
	"agent_mgr_peak_mb", "agent_worker_peak_mb", "resolver_peak_mb",
	"fdb_per_host", "neigh_per_host", "idle_cpu_cores",
	"new_resolvable_p50_ms", "new_resolvable_p99_ms", "new_reachable_p50_ms", "new_reachable_p99_ms", "additions",
}

// noWorker fills the worker column when every host is a manager.
const noWorker = "-"

func (o Options) withDefaults() (Options, error) {
	if len(o.Sizes) == 0 {
		o.Sizes = []int{3, 10, 25, 50}
	}
	if o.PerHost == 0 {
		o.PerHost = 4
	}
	if o.Additions == 0 {
		o.Additions = 10
	}
	if o.HostsPerSubnet == 0 {
		o.HostsPerSubnet = 1
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 200 * time.Millisecond
	}
	if o.PollInterval == 0 {
		o.PollInterval = 20 * time.Millisecond
	}
	if o.UpTimeout == 0 {
		o.UpTimeout = 5 * time.Minute
	}
	if o.ProbeTimeout == 0 {
		o.ProbeTimeout = 30 * time.Second
	}
	if o.IdleWindow == 0 {
		o.IdleWindow = 5 * time.Second
	}
	if o.ResultsDir == "" {
		o.ResultsDir = "bench-results"
	}
	if o.StateRoot == "" {
		o.StateRoot = os.Getenv("WEFT_STATE_ROOT")
	}
	if o.StateRoot == "" {
		o.StateRoot = naming.DefaultStateRoot
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Rounds == 0 {
		o.Rounds = 3
	}
	var errs []error
	for _, n := range o.Sizes {
		if n < 1 || n > 254*o.HostsPerSubnet || n > 254 {
			errs = append(errs, fmt.Errorf("size %d hosts: must be 1..%d (weft allows 254 hosts, %d per subnet in 254 subnets); fix: pick a smaller size or more hosts per subnet", n, min(254, 254*o.HostsPerSubnet), o.HostsPerSubnet))
		}
	}
	if o.Rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds %d: must be at least 1", o.Rounds))
	}
	if o.PerHost < 1 || o.Additions < 1 || o.HostsPerSubnet < 1 || o.HostsPerSubnet > 200 {
		errs = append(errs, fmt.Errorf("containers per host (%d), additions (%d) and hosts per subnet (%d, at most 200) must be positive", o.PerHost, o.Additions, o.HostsPerSubnet))
	}
	for what, path := range map[string]*string{"weft binary": &o.Weft, "hello binary": &o.Hello} {
		abs, err := filepath.Abs(*path)
		if *path == "" || err != nil {
			errs = append(errs, fmt.Errorf("%s: no path given; fix: run `make build` and pass bin/weft and bin/hello", what))
			continue
		}
		if _, err := os.Stat(abs); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w; fix: run `make build`", what, abs, err))
		}
		*path = abs
	}
	return o, errors.Join(errs...)
}

// sizeResult is what one cluster size measured.
type sizeResult struct {
	Hosts          int                `json:"hosts"`
	Containers     int                `json:"containers"`
	Cluster        string             `json:"cluster"`
	UpSeconds      float64            `json:"up_s"`          // wall time of `weft up` from nothing
	UpReported     float64            `json:"up_reported_s"` // what weft up itself reported
	DownSeconds    float64            `json:"down_s"`
	ManagerPeakMB  float64            `json:"agent_manager_peak_mb"` // highest VmHWM of the manager agents
	WorkerPeakMB   float64            `json:"agent_worker_peak_mb"`  // highest VmHWM of the other agents; 0 when there are none
	Workers        int                `json:"workers"`
	ResolverPeakMB float64            `json:"resolver_peak_mb"`
	AgentRSSMB     float64            `json:"agent_rss_mb_max"` // highest VmRSS of any agent before down
	IdleCPU        map[string]float64 `json:"idle_cpu_cores"`   // CPU cores used by the idle cluster: agents, resolvers, containers
	FDBMin         int                `json:"fdb_min"`
	FDBMax         int                `json:"fdb_max"`
	NeighMin       int                `json:"neigh_min"`
	NeighMax       int                `json:"neigh_max"`
	ResolvableMs   []float64          `json:"new_resolvable_ms"` // per addition: slowest host
	ReachableMs    []float64          `json:"new_reachable_ms"`
	ApplyMs        []float64          `json:"new_apply_ms"`                // per addition: the apply call itself
	GapMs          []float64          `json:"new_resolve_to_reach_gap_ms"` // per addition: the longest a host resolved the name but could not connect yet
	FirstMs        []float64          `json:"new_first_resolvable_ms"`     // per addition: fastest host
	UpFailed       bool               `json:"up_failed"`                   // weft up itself did not finish
	ProbeCPU       float64            `json:"probe_cpu_cores"`             // CPU cores this benchmark's own probes used while timing additions
	FailedAdds     int                `json:"new_failed"`                  // additions that did not spread within the probe timeout
	Leftovers      []string           `json:"leftovers,omitempty"`
	Problems       []string           `json:"problems,omitempty"` // what could not be measured; the rest of the row stands
	Error          string             `json:"error,omitempty"`    // why the size stopped early
	Variant        string             `json:"variant,omitempty"`  // Compare runs: variant.Name
	Round          int                `json:"round,omitempty"`    // Compare runs: from 1
	resolverPids   []int
}

// variants are what each round measures: weft's defaults alone, or with
// Compare every variant.
func (o Options) variants() ([]variant, int) {
	if !o.Compare {
		return []variant{variantOn}, 1
	}
	return compared, o.Rounds
}

// Run measures every size in turn and returns the report; the PNG plot is
// written to o.ResultsDir and named in Files["plot"]. A size that fails is
// recorded in its row and notes and the next size is still measured; Run
// fails only on bad options, cancellation, or when no size could be measured.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("weft bench up: %w", err)
	}
	r := &report.Report{
		Name:    "up",
		Started: time.Now(),
		Machine: report.ThisMachine(),
		Tool:    "weft up/down (CLI), resolver queries and TCP connects from inside the lab namespaces",
		Columns: slices.Clone(columns),
		Values:  map[string]any{},
		Files:   map[string]string{},
	}
	work, err := os.MkdirTemp("", "weft-bench-up-")
	if err != nil {
		return nil, fmt.Errorf("creating a folder for cluster files: %w", err)
	}
	defer os.RemoveAll(work)

	loadStart, busyStart := labrun.BusyNote("at the start")
	var results []sizeResult
	variants, rounds := o.variants()
	for _, n := range o.Sizes {
		for round := 1; round <= rounds; round++ {
			for _, v := range variants {
				res, err := measureSize(ctx, o, work, n, v)
				if ctx.Err() != nil {
					return nil, fmt.Errorf("weft bench up interrupted at %d hosts: %w", n, ctx.Err())
				}
				if err != nil {
					res.Error = err.Error()
					o.Log.Error("bench up: size failed", "hosts", n, "variant", v.Name, "err", err)
				}
				if o.Compare {
					res.Variant, res.Round = v.Name, round
				}
				results = append(results, res)
			}
		}
	}
	if err := fillReport(r, o, results); err != nil {
		return nil, err
	}
	loadEnd, busyEnd := labrun.BusyNote("at the end")
	r.Values["loadavg_start"], r.Values["loadavg_end"] = loadStart, loadEnd
	for _, note := range []string{busyStart, busyEnd} {
		if note != "" {
			r.Notes = append(r.Notes, note)
		}
	}
	return r, nil
}

// measureSize brings up one cluster of n hosts, measures it and removes it.
func measureSize(ctx context.Context, o Options, work string, n int, v variant) (res sizeResult, err error) {
	res = sizeResult{Hosts: n, Containers: n * o.PerHost}
	name, err := newClusterName()
	if err != nil {
		return res, err
	}
	res.Cluster = name
	o.Log.Info("bench up: measuring", "cluster", name, "hosts", n, "containers", n*o.PerHost, "variant", v.Name)
	w := weftCLI{bin: o.Weft, stateRoot: o.StateRoot, log: o.Log}
	shape := clusterShape{Name: name, Hosts: n, HostsPerSubnet: o.HostsPerSubnet, Replicas: n * o.PerHost, Hello: o.Hello, HealthInterval: o.HealthInterval, NoFirewall: v.NoFirewall, NoUserNS: v.NoUserNS}
	file := filepath.Join(work, name+".yaml")
	if err := os.WriteFile(file, []byte(clusterFile(shape)), 0o644); err != nil {
		return res, fmt.Errorf("writing cluster file %s: %w", file, err)
	}

	downDone := false
	defer func() {
		if downDone {
			return
		}
		// Also after a failure or ctrl-C: nothing of the cluster may stay.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		if _, derr := w.down(cctx, name); derr != nil {
			err = errors.Join(err, fmt.Errorf("removing cluster %s after a failure: %w; fix: run `weft down --cluster %s`", name, derr, name))
		}
	}()

	up, took, err := w.up(ctx, file, o.UpTimeout)
	res.UpSeconds, res.UpReported = took.Seconds(), up.Seconds
	if err != nil {
		res.UpFailed = true
		return res, fmt.Errorf("bringing up %d hosts: %w", n, err)
	}
	st, err := w.status(ctx, name)
	if err != nil {
		return res, err
	}
	// From here on a failed measurement is noted and the others still run:
	// a saturated machine should still show what it managed.
	problem := func(err error) {
		o.Log.Warn("bench up: measurement failed", "cluster", name, "hosts", n, "err", err)
		res.Problems = append(res.Problems, err.Error())
	}
	if err := countOverlayEntries(&res, st); err != nil {
		problem(err)
	}
	if res.IdleCPU, err = idleCPU(ctx, o, name, st); err != nil {
		problem(err)
	}
	if err := measureAdditions(ctx, o, &res, st, file, shape); err != nil {
		problem(err)
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	shape.Replicas += o.Additions
	// The benchmark applied the additions itself; weft up must agree that the
	// grown cluster is converged and healthy.
	if _, _, err := w.up(ctx, file, o.UpTimeout); err != nil {
		problem(fmt.Errorf("checking the cluster after the additions: %w", err))
	}
	if st2, err := w.status(ctx, name); err != nil {
		problem(err)
	} else {
		st = st2
	}
	if err := readMemory(&res, o, name, st); err != nil {
		problem(err)
	}

	down, err := w.down(ctx, name)
	downDone = true
	res.DownSeconds = down.Seconds()
	if err != nil {
		return res, fmt.Errorf("removing cluster %s: %w", name, err)
	}
	res.Leftovers, err = leftovers(name, st, res.resolverPids)
	if err != nil {
		return res, err
	}
	if len(res.Leftovers) > 0 {
		return res, fmt.Errorf("weft down left %d things of cluster %s behind: %v", len(res.Leftovers), name, res.Leftovers)
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measureAdditions times o.Additions new containers one after another. An
// addition that does not spread within o.ProbeTimeout is counted as failed
// and the next one is still timed.
func measureAdditions(ctx context.Context, o Options, res *sizeResult, st api.Status, file string, shape clusterShape) error {
	probes, err := openProbes(st)
	if err != nil {
		return err
	}
	defer closeAll(probes)
	client := api.NewClient(naming.AgentSocket(o.StateRoot, res.Cluster, hostName(1)))
	// The probes compete with the cluster for the CPU; say how much they took.
	selfBefore, selfErr := cpuTime(os.Getpid())
	began := time.Now()
	defer func() {
		if selfAfter, err := cpuTime(os.Getpid()); err == nil && selfErr == nil {
			res.ProbeCPU = (selfAfter - selfBefore).Seconds() / time.Since(began).Seconds()
		}
	}()
	var failures []error
	for k := 1; k <= o.Additions; k++ {
		shape.Replicas++
		a, err := addContainer(ctx, o, client, file, shape, probes)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			res.FailedAdds++
			failures = append(failures, fmt.Errorf("new container %d of %d: %w", k, o.Additions, err))
			continue
		}
		res.ResolvableMs = append(res.ResolvableMs, ms(a.Slowest.Resolvable))
		res.ReachableMs = append(res.ReachableMs, ms(a.Slowest.Reachable))
		res.ApplyMs = append(res.ApplyMs, ms(a.Apply))
		res.FirstMs = append(res.FirstMs, ms(a.FirstResolvable))
		res.GapMs = append(res.GapMs, ms(a.LongestGap))
	}
	return errors.Join(failures...)
}

// countOverlayEntries reads FDB and neighbor entries of every host's vxlan device.
func countOverlayEntries(res *sizeResult, st api.Status) error {
	res.FDBMin, res.NeighMin = math.MaxInt, math.MaxInt
	for _, h := range st.Hosts {
		fdb, neigh, err := overlayEntries(h.Netns, benchVNI)
		if err != nil {
			return fmt.Errorf("counting overlay entries of host %s: %w", h.Name, err)
		}
		res.FDBMin, res.FDBMax = min(res.FDBMin, fdb), max(res.FDBMax, fdb)
		res.NeighMin, res.NeighMax = min(res.NeighMin, neigh), max(res.NeighMax, neigh)
	}
	return nil
}

// openProbes opens one probe per host: its resolver, and the first ready
// container on it as the place to connect from.
func openProbes(st api.Status) (map[string]*hostProbe, error) {
	probes := map[string]*hostProbe{}
	containers := slices.Clone(st.Containers)
	sort.Slice(containers, func(i, j int) bool { return containers[i].Container < containers[j].Container })
	for _, h := range st.Hosts {
		overlay, err := netip.ParseAddr(h.OverlayAddr)
		if err != nil {
			closeAll(probes)
			return nil, fmt.Errorf("host %s: overlay address: %w", h.Name, err)
		}
		i := slices.IndexFunc(containers, func(c model.ContainerStatus) bool { return c.Host == h.Name && c.Ready() })
		if i < 0 {
			closeAll(probes)
			return nil, fmt.Errorf("host %s has no ready container to connect from", h.Name)
		}
		p, err := openHostProbe(h.Name, h.Netns, overlay, containers[i].Netns, containers[i].IP)
		if err != nil {
			closeAll(probes)
			return nil, err
		}
		probes[h.Name] = p
	}
	return probes, nil
}

func closeAll(probes map[string]*hostProbe) {
	for _, p := range probes {
		p.Close()
	}
}

// addition is the timing of one new container, all since the apply was sent.
type addition struct {
	Apply           time.Duration       // until the apply call returned
	FirstResolvable time.Duration       // the fastest host's resolver answered
	Slowest         newContainerLatency // the slowest host, for each step
	LongestGap      time.Duration       // the longest any host resolved the name before it could connect
}

// addContainer grows the service by one replica, applies the file through
// an agent's API exactly as `weft up` does, and from the moment the apply is
// sent waits until every host resolves the new container and connects to it.
func addContainer(ctx context.Context, o Options, client *api.Client, file string, shape clusterShape, probes map[string]*hostProbe) (addition, error) {
	if err := os.WriteFile(file, []byte(clusterFile(shape)), 0o644); err != nil {
		return addition{}, fmt.Errorf("writing cluster file %s: %w", file, err)
	}
	c, err := spec.Load(file)
	if err != nil {
		return addition{}, fmt.Errorf("loading the generated cluster file %s: %w", file, err)
	}
	container := naming.ContainerName(serviceName, shape.Replicas)
	fqdn := container + "." + c.Domain
	pctx, cancel := context.WithTimeout(ctx, o.ProbeTimeout)
	defer cancel()
	start := time.Now()
	if err := applyWithRetry(pctx, client, c); err != nil {
		return addition{}, err
	}
	a := addition{Apply: time.Since(start), FirstResolvable: o.ProbeTimeout}
	results := make(chan newContainerLatency, len(probes))
	g, gctx := errgroup.WithContext(pctx)
	for _, p := range probes {
		g.Go(func() error {
			lat, err := p.waitNewContainer(gctx, start, fqdn, servicePort, o.PollInterval)
			if err != nil {
				return err
			}
			results <- lat
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return addition{}, fmt.Errorf("new container %s within %s: %w", container, o.ProbeTimeout, err)
	}
	close(results)
	for lat := range results {
		a.Slowest.Resolvable = max(a.Slowest.Resolvable, lat.Resolvable)
		a.Slowest.Reachable = max(a.Slowest.Reachable, lat.Reachable)
		a.FirstResolvable = min(a.FirstResolvable, lat.Resolvable)
		a.LongestGap = max(a.LongestGap, lat.Reachable-lat.Resolvable)
		if gap := lat.Reachable - lat.Resolvable; gap > time.Second {
			o.Log.Warn("bench up: host resolved the new container long before it could connect", "host", lat.Host, "container", container, "gap", gap, "attempts", lat.Attempts, "last_err", lat.LastErr)
		}
	}
	o.Log.Info("bench up: new container spread", "container", container, "hosts", len(probes), "apply", a.Apply, "first_resolvable", a.FirstResolvable, "resolvable", a.Slowest.Resolvable, "reachable", a.Slowest.Reachable)
	return a, nil
}

// applyWithRetry sends the file to the agent, retrying while the store is
// briefly unusable, as `weft up` does.
func applyWithRetry(ctx context.Context, client *api.Client, c *spec.Cluster) error {
	for {
		_, err := client.Apply(ctx, c)
		if err == nil {
			return nil
		}
		if serr := sleep(ctx, 100*time.Millisecond); serr != nil {
			return fmt.Errorf("applying the grown cluster file: %w", errors.Join(err, serr))
		}
	}
}

// idleCPU measures how many CPU cores the cluster's processes use while
// nothing changes: the cost of health checks, resyncs and leases.
func idleCPU(ctx context.Context, o Options, cluster string, st api.Status) (map[string]float64, error) {
	groups := map[string][]int{}
	for _, h := range st.Hosts {
		pid, err := resolverPid(o.StateRoot, cluster, h.Name)
		if err != nil {
			return nil, err
		}
		groups["agents"] = append(groups["agents"], h.AgentPid)
		groups["resolvers"] = append(groups["resolvers"], pid)
	}
	for _, c := range st.Containers {
		groups["containers"] = append(groups["containers"], c.Pid)
	}
	total := func() (map[string]time.Duration, error) {
		sums := map[string]time.Duration{}
		for g, pids := range groups {
			for _, pid := range pids {
				t, err := cpuTime(pid)
				if err != nil {
					return nil, fmt.Errorf("measuring idle CPU of the %s: %w", g, err)
				}
				sums[g] += t
			}
		}
		return sums, nil
	}
	before, err := total()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := sleep(ctx, o.IdleWindow); err != nil {
		return nil, err
	}
	after, err := total()
	if err != nil {
		return nil, err
	}
	window := time.Since(start).Seconds()
	cores := map[string]float64{}
	for g := range groups {
		cores[g] = (after[g] - before[g]).Seconds() / window
		cores["total"] += cores[g]
	}
	return cores, nil
}

// readMemory reads the peak and current memory of every agent and
// resolver; a host it cannot read is reported and the others still count.
func readMemory(res *sizeResult, o Options, cluster string, st api.Status) error {
	const mb = 1 << 20
	var errs []error
	for _, h := range st.Hosts {
		if pid, err := resolverPid(o.StateRoot, cluster, h.Name); err != nil {
			errs = append(errs, err)
		} else if m, err := processMemory(pid); err != nil {
			errs = append(errs, fmt.Errorf("resolver of host %s: %w", h.Name, err))
		} else {
			res.resolverPids = append(res.resolverPids, pid)
			res.ResolverPeakMB = max(res.ResolverPeakMB, float64(m.Peak)/mb)
		}
		if h.AgentPid == 0 {
			errs = append(errs, fmt.Errorf("host %s: no agent pid in weft status (agent %s)", h.Name, h.Agent))
			continue
		}
		m, err := processMemory(h.AgentPid)
		if err != nil {
			errs = append(errs, fmt.Errorf("agent of host %s: %w", h.Name, err))
			continue
		}
		peak := float64(m.Peak) / mb
		if h.Manager {
			res.ManagerPeakMB = max(res.ManagerPeakMB, peak)
		} else {
			res.WorkerPeakMB = max(res.WorkerPeakMB, peak)
			res.Workers++
		}
		res.AgentRSSMB = max(res.AgentRSSMB, float64(m.RSS)/mb)
	}
	return errors.Join(errs...)
}

// leftovers lists what of the cluster still exists after `weft down`:
// namespaces, and the agents, resolvers and containers seen before.
func leftovers(cluster string, st api.Status, resolverPids []int) ([]string, error) {
	out, err := leftoverNamespaces(cluster)
	if err != nil {
		return nil, err
	}
	pids := slices.Clone(resolverPids)
	for _, h := range st.Hosts {
		pids = append(pids, h.AgentPid)
	}
	for _, c := range st.Containers {
		pids = append(pids, c.Pid)
	}
	for _, pid := range pids {
		if pid > 0 && processAlive(pid) {
			out = append(out, "process "+strconv.Itoa(pid))
		}
	}
	return out, nil
}
