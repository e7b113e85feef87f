package up

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/weft-dev/weft/internal/bench/report"
)

// Targets from the issue.
const (
	targetSmallHosts     = 3
	targetSmallUpSeconds = 5.0
	targetLargeHosts     = 50
	targetLargeUpSeconds = 60.0
	targetNewP99Ms       = 200.0
	targetAgentMB        = 40.0
)

// percentile is the nearest-rank p-th percentile of xs (p in 0..100).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

func fmtFloat(v float64, decimals int) string { return strconv.FormatFloat(v, 'f', decimals, 64) }

// span prints lo, or "lo..hi" when hosts differ.
func span(lo, hi int) string {
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d..%d", lo, hi)
}

// newPercentile is the p-th percentile of a new-container figure, counting a
// failed addition as slower than every other.
func (s sizeResult) newPercentile(xs []float64, p float64) float64 {
	all := slices.Clone(xs)
	for range s.FailedAdds {
		all = append(all, math.Inf(1))
	}
	return percentile(all, p)
}

// fmtMs prints milliseconds; a failed addition shows as more than the timeout.
func fmtMs(v float64, timeout time.Duration) string {
	if math.IsInf(v, 1) {
		return ">" + strconv.FormatInt(timeout.Milliseconds(), 10)
	}
	return fmtFloat(v, 0)
}

// notMeasured fills a cell whose measurement failed; the notes say why.
const notMeasured = "failed"

// row renders one size; cells that could not be measured say so.
func (s sizeResult) row(o Options) []string {
	cell := func(measured bool, value func() string) string {
		if !measured {
			return notMeasured
		}
		return value()
	}
	worker := noWorker
	if s.Workers > 0 {
		worker = fmtFloat(s.WorkerPeakMB, 1)
	}
	memory := s.ManagerPeakMB > 0
	newMs := func(xs []float64, p float64) func() string {
		return func() string { return fmtMs(s.newPercentile(xs, p), o.ProbeTimeout) }
	}
	timed := len(s.ReachableMs)+s.FailedAdds > 0
	up := cell(s.UpSeconds > 0, func() string { return fmtFloat(s.UpSeconds, 2) })
	if s.UpFailed {
		up += " (failed)"
	}
	return []string{
		strconv.Itoa(s.Hosts), strconv.Itoa(s.Containers),
		up,
		cell(s.DownSeconds > 0, func() string { return fmtFloat(s.DownSeconds, 2) }),
		cell(memory, func() string { return fmtFloat(s.ManagerPeakMB, 1) }),
		cell(memory, func() string { return worker }),
		cell(memory, func() string { return fmtFloat(s.ResolverPeakMB, 1) }),
		cell(s.FDBMax > 0, func() string { return span(s.FDBMin, s.FDBMax) }),
		cell(s.NeighMax > 0, func() string { return span(s.NeighMin, s.NeighMax) }),
		cell(s.IdleCPU != nil, func() string { return fmtFloat(s.IdleCPU["total"], 2) }),
		cell(timed, newMs(s.ResolvableMs, 50)), cell(timed, newMs(s.ResolvableMs, 99)),
		cell(timed, newMs(s.ReachableMs, 50)), cell(timed, newMs(s.ReachableMs, 99)),
		fmt.Sprintf("%d", len(s.ReachableMs)+s.FailedAdds),
	}
}

// fillReport turns the measured sizes into rows, fits, notes and the plot.
func fillReport(r *report.Report, o Options, results []sizeResult) error {
	var ok []sizeResult
	if o.Compare {
		r.Columns = append([]string{"variant", "round"}, r.Columns...)
	}
	for _, s := range results {
		row := s.row(o)
		if o.Compare {
			row = append([]string{s.Variant, strconv.Itoa(s.Round)}, row...)
		}
		r.Rows = append(r.Rows, row)
		for _, p := range s.Problems {
			r.Notes = append(r.Notes, fmt.Sprintf("%d hosts (cluster %s): not measured: %s", s.Hosts, s.Cluster, p))
		}
		if s.Error != "" {
			r.Notes = append(r.Notes, fmt.Sprintf("%d hosts (cluster %s) stopped early: %s", s.Hosts, s.Cluster, s.Error))
			continue
		}
		// Fits, plot and targets are of weft's defaults.
		if s.Variant == "" || s.Variant == variantOn.Name {
			ok = append(ok, s)
		}
	}
	if o.Compare {
		rows, notes, values := compareVariants(o, results)
		r.Rows = append(r.Rows, rows...)
		r.Notes = append(r.Notes, notes...)
		r.Values["compare"] = values
	}
	r.Values["sizes"] = results
	r.Values["per_host"] = o.PerHost
	r.Values["additions"] = o.Additions
	r.Values["health_interval_ms"] = o.HealthInterval.Milliseconds()
	r.Values["poll_interval_ms"] = o.PollInterval.Milliseconds()
	if len(ok) == 0 {
		return fmt.Errorf("weft bench up: no size could be measured: %s", results[0].Error)
	}

	var hosts []int
	var ups, downs []float64
	for _, s := range ok {
		hosts = append(hosts, s.Hosts)
		ups = append(ups, s.UpSeconds)
		downs = append(downs, s.DownSeconds)
	}
	var upFit *growthFit
	if f, err := fitGrowth(hosts, ups); err == nil {
		upFit = &f
		r.Values["fit_up"] = f
		r.Notes = append(r.Notes, f.describe("up time"))
	} else {
		r.Notes = append(r.Notes, "up time: no growth fit: "+err.Error())
	}
	if f, err := fitGrowth(hosts, downs); err == nil {
		r.Values["fit_down"] = f
		r.Notes = append(r.Notes, f.describe("down time"))
	}
	plotPath, err := drawPlot(o.ResultsDir, r.Started, ok, upFit)
	if err != nil {
		return err
	}
	r.Files["plot"] = plotPath

	for _, s := range ok {
		if s.IdleCPU != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("%d hosts idle: agents %.2f, resolvers %.2f, containers %.2f CPU cores of %d", s.Hosts, s.IdleCPU["agents"], s.IdleCPU["resolvers"], s.IdleCPU["containers"], r.Machine.CPUs))
		}
		if len(s.ReachableMs) == 0 {
			continue
		}
		r.Notes = append(r.Notes, fmt.Sprintf("%d hosts, new container medians since the apply was sent: apply returned %.0fms, first host's resolver answered %.0fms, last host's %.0fms, last host connected %.0fms; longest a host resolved the name before it could connect: %.0fms; the probes themselves used %.2f CPU cores meanwhile",
			s.Hosts, percentile(s.ApplyMs, 50), percentile(s.FirstMs, 50), percentile(s.ResolvableMs, 50), percentile(s.ReachableMs, 50), percentile(s.GapMs, 100), s.ProbeCPU))
	}
	r.Notes = append(r.Notes, targetNotes(o, ok)...)
	r.Notes = append(r.Notes, fmt.Sprintf(
		"method: idle_cpu_cores is the CPU time agents, resolvers and containers used over %s of the idle cluster, in cores; up_s/down_s are wall times of `weft up`/`weft down` from nothing to every container healthy; peaks are VmHWM of the agents (etcd members live in the manager agents) and resolvers; "+
			"new_* are the slowest host per addition, from the apply sent to an agent until that host's resolver answers the new name (resolvable) and a container on it has connected to the answered address (reachable); "+
			"p99 is nearest-rank over %d additions (the maximum below 100); probes poll every %s, the service's health interval is %s",
		o.IdleWindow, o.Additions, o.PollInterval, o.HealthInterval))
	return nil
}

// targetNotes says where each measured figure stands against the targets.
func targetNotes(o Options, ok []sizeResult) []string {
	var notes []string
	verdict := func(good bool) string {
		if good {
			return "met"
		}
		return "missed"
	}
	largest := ok[len(ok)-1]
	for _, s := range ok {
		if s.Hosts == targetSmallHosts {
			notes = append(notes, fmt.Sprintf("target %d hosts healthy ≤ %.0fs: %s (%.2fs with %d containers)", targetSmallHosts, targetSmallUpSeconds, verdict(s.UpSeconds <= targetSmallUpSeconds), s.UpSeconds, s.Containers))
		}
		if s.Hosts > largest.Hosts {
			largest = s
		}
	}
	if largest.Hosts >= targetLargeHosts {
		notes = append(notes, fmt.Sprintf("target %d hosts healthy ≤ %.0fs: %s (%.2fs)", targetLargeHosts, targetLargeUpSeconds, verdict(largest.UpSeconds <= targetLargeUpSeconds), largest.UpSeconds))
	} else {
		notes = append(notes, fmt.Sprintf("target %d hosts ≤ %.0fs: not measured (largest size measured: %d hosts)", targetLargeHosts, targetLargeUpSeconds, largest.Hosts))
	}
	if len(largest.ReachableMs)+largest.FailedAdds > 0 {
		p99 := largest.newPercentile(largest.ReachableMs, 99)
		notes = append(notes, fmt.Sprintf("target new container resolvable and reachable from every host ≤ %.0fms p99 (at %d hosts): %s at %d hosts (%sms)", targetNewP99Ms, targetLargeHosts, verdict(p99 <= targetNewP99Ms), largest.Hosts, fmtMs(p99, o.ProbeTimeout)))
	}
	worstAgent := 0.0
	for _, s := range ok {
		worstAgent = max(worstAgent, s.ManagerPeakMB, s.WorkerPeakMB)
	}
	notes = append(notes, fmt.Sprintf("target agent RSS ≤ %.0f MB: %s (highest agent peak %.1f MB)", targetAgentMB, verdict(worstAgent <= targetAgentMB), worstAgent))
	return notes
}

// variantCost is, for one size, the medians of one variant against the
// defaults' (variantOn).
type variantCost struct {
	Hosts      int     `json:"hosts"`
	Variant    string  `json:"variant"`
	Rounds     int     `json:"rounds"` // rounds measured of both
	UpOn       float64 `json:"up_on_s"`
	Up         float64 `json:"up_s"`
	UpRatio    float64 `json:"up_ratio"` // UpOn / Up: above 1, the defaults cost that factor
	DownOn     float64 `json:"down_on_s"`
	Down       float64 `json:"down_s"`
	DownRatio  float64 `json:"down_ratio"`
	Containers int     `json:"containers"`
}

// compareVariants turns a Compare run into one row per size and variant
// other than the defaults: "on/<variant>" with the ratio of the median
// up_s and down_s (defaults over variant), other cells "-"; a note with
// the medians; and the figures for the JSON.
func compareVariants(o Options, results []sizeResult) ([][]string, []string, []variantCost) {
	var rows [][]string
	var notes []string
	var costs []variantCost
	for _, n := range o.Sizes {
		ups, downs := map[string][]float64{}, map[string][]float64{}
		containers := 0
		for _, s := range results {
			if s.Hosts != n || s.Error != "" || s.UpSeconds <= 0 || s.DownSeconds <= 0 {
				continue
			}
			ups[s.Variant] = append(ups[s.Variant], s.UpSeconds)
			downs[s.Variant] = append(downs[s.Variant], s.DownSeconds)
			containers = s.Containers
		}
		for _, v := range compared[1:] {
			label := variantOn.Name + "/" + v.Name
			c := variantCost{Hosts: n, Variant: v.Name, Containers: containers, Rounds: min(len(ups[variantOn.Name]), len(ups[v.Name]))}
			row := make([]string, 2+len(columns))
			for i := range row {
				row[i] = "-"
			}
			row[0], row[1], row[2], row[3] = label, "median", strconv.Itoa(n), strconv.Itoa(containers)
			if c.Rounds == 0 {
				row[4], row[5] = notMeasured, notMeasured
				notes = append(notes, fmt.Sprintf("%d hosts, %s: no round of both measured", n, label))
				rows = append(rows, row)
				continue
			}
			c.UpOn, c.Up = percentile(ups[variantOn.Name], 50), percentile(ups[v.Name], 50)
			c.DownOn, c.Down = percentile(downs[variantOn.Name], 50), percentile(downs[v.Name], 50)
			c.UpRatio, c.DownRatio = c.UpOn/c.Up, c.DownOn/c.Down
			row[4], row[5] = fmtFloat(c.UpRatio, 2), fmtFloat(c.DownRatio, 2)
			rows = append(rows, row)
			costs = append(costs, c)
			notes = append(notes, fmt.Sprintf("%d hosts, %d containers: median up %.2fs with weft's defaults, %.2fs %s (%s %.2f); down %.2fs and %.2fs (%.2f); %d rounds each, alternating",
				n, containers, c.UpOn, c.Up, describeVariant(v), label, c.UpRatio, c.DownOn, c.Down, c.DownRatio, c.Rounds))
		}
	}
	return rows, notes, costs
}

func describeVariant(v variant) string {
	switch {
	case v.NoFirewall:
		return "with firewall: false"
	case v.NoUserNS:
		return "with userns: false"
	}
	return "with weft's defaults"
}
