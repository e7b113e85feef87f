package overlay

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
	"github.com/weft-dev/weft/internal/bench/report"
)

// measurements is everything measured in one run, by path index (Paths).
type measurements struct {
	Streams    []int
	Rounds     int
	MTU        [numPaths]int
	DF         [numPaths]string
	throughput [numPaths]map[int][]float64 // streams -> bits/s of each round
	p50, p99   [numPaths][]float64         // µs, one per round
	trips      [numPaths]int               // round trips measured, all rounds
	perRound   []map[string]any            // for the JSON: what each round measured
}

func (m *measurements) addThroughput(path, streams int, bps float64) {
	if m.throughput[path] == nil {
		m.throughput[path] = map[int][]float64{}
	}
	m.throughput[path][streams] = append(m.throughput[path][streams], bps)
	m.perRound = append(m.perRound, map[string]any{"path": Paths()[path], "streams": streams, "gbit_s": bps / 1e9})
}

func (m *measurements) addLatency(path int, samples []time.Duration) {
	p50, p99 := micros(labrun.Percentile(samples, 50)), micros(labrun.Percentile(samples, 99))
	m.p50[path] = append(m.p50[path], p50)
	m.p99[path] = append(m.p99[path], p99)
	m.trips[path] += len(samples)
	m.perRound = append(m.perRound, map[string]any{"path": Paths()[path], "round_trips": len(samples), "p50_us": p50, "p99_us": p99})
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Metric keys of Report.Values["figures"] and ["ratios"].
func throughputKey(streams int) string { return fmt.Sprintf("throughput_%d_gbit_s", streams) }

const (
	p50Key = "rr_p50_us"
	p99Key = "rr_p99_us"
	mtuKey = "mtu"
)

// metric is one row of the table.
type metric struct {
	key, label string
	format     func(float64) string
}

func (m *measurements) metrics() []metric {
	var rows []metric
	gbit := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	us := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	for _, n := range m.Streams {
		label := fmt.Sprintf("TCP throughput, %d streams (Gbit/s)", n)
		if n == 1 {
			label = "TCP throughput, 1 stream (Gbit/s)"
		}
		rows = append(rows, metric{throughputKey(n), label, gbit})
	}
	return append(rows,
		metric{p50Key, "TCP 1-byte request/response p50 (µs)", us},
		metric{p99Key, "TCP 1-byte request/response p99 (µs)", us})
}

// figures is the value of every metric on every path: the best round
// (highest throughput, lowest latency percentile). Other work on the machine
// only ever takes from a measurement, never adds to it, so the best round is
// the one nearest to what the path itself can do; medians are kept in the
// JSON next to them.
func (m *measurements) figures(aggregate func([]float64, bool) float64) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, mt := range m.metrics() {
		out[mt.key] = map[string]float64{}
	}
	out[mtuKey] = map[string]float64{}
	for p, path := range Paths() {
		for _, n := range m.Streams {
			out[throughputKey(n)][path] = aggregate(m.throughput[p][n], true) / 1e9
		}
		out[p50Key][path] = aggregate(m.p50[p], false)
		out[p99Key][path] = aggregate(m.p99[p], false)
		out[mtuKey][path] = float64(m.MTU[p])
	}
	return out
}

// best is the highest value when higher is better, else the lowest.
func best(values []float64, higherIsBetter bool) float64 {
	if len(values) == 0 {
		return 0
	}
	if higherIsBetter {
		return slices.Max(values)
	}
	return slices.Min(values)
}

func median(values []float64, _ bool) float64 { return labrun.Median(values) }

// Columns of the table.
func columns() []string {
	cols := []string{"metric"}
	cols = append(cols, Paths()...)
	for _, r := range Ratios() {
		cols = append(cols, r[0]+"/"+r[1])
	}
	return cols
}

// buildReport turns the measurements into the table, with the ratios
// computed from the unrounded figures.
func buildReport(m *measurements, tool string) *report.Report {
	figs := m.figures(best)
	ratios := map[string]map[string]float64{}
	r := &report.Report{Name: "overlay", Tool: tool, Columns: columns(), Values: map[string]any{}}
	for _, mt := range m.metrics() {
		row := []string{mt.label}
		for _, path := range Paths() {
			row = append(row, mt.format(figs[mt.key][path]))
		}
		ratios[mt.key] = map[string]float64{}
		for _, pair := range Ratios() {
			v := labrun.Ratio(figs[mt.key][pair[0]], figs[mt.key][pair[1]])
			ratios[mt.key][pair[0]+"/"+pair[1]] = v
			row = append(row, labrun.FormatRatio(v))
		}
		r.Rows = append(r.Rows, row)
	}
	mtuRow := []string{"MTU of the client's eth0 (bytes)"}
	dfRow := []string{"DF ping of MTU-28 bytes"}
	for p := range Paths() {
		mtuRow = append(mtuRow, strconv.Itoa(m.MTU[p]))
		dfRow = append(dfRow, m.DF[p])
	}
	for range Ratios() {
		mtuRow = append(mtuRow, "-")
		dfRow = append(dfRow, "-")
	}
	r.Rows = append(r.Rows, mtuRow, dfRow)

	for p, path := range Paths() {
		switch m.DF[p] {
		case dfBlackHole:
			r.Notes = append(r.Notes, fmt.Sprintf("%s: don't-fragment pings of %d bytes (MTU %d - 28) got no answer: packets of full MTU are dropped silently (a black hole); lower the MTU on that side",
				path, m.MTU[p]-28, m.MTU[p]))
		case dfNoPing:
			r.Notes = append(r.Notes, path+": no DF probe: ping is not installed (apt-get install -y iputils-ping)")
		}
	}
	r.Notes = append(r.Notes, targetNotes(m, ratios)...)
	r.Notes = append(r.Notes, fmt.Sprintf("%d rounds, sides alternating; every figure is the best round (highest throughput, lowest percentile): other work on the machine only lowers a round; medians and every round are in the JSON (%d round trips on the overlay in all)",
		m.Rounds, m.trips[0]))
	r.Values["figures"] = figs
	r.Values["median_figures"] = m.figures(median)
	r.Values["ratios"] = ratios
	df := map[string]string{}
	for p, path := range Paths() {
		df[path] = m.DF[p]
	}
	r.Values["df_probe"] = df
	r.Values["measurements"] = m.perRound
	return r
}

// targetNotes says where the run stands against the targets.
func targetNotes(m *measurements, ratios map[string]map[string]float64) []string {
	var notes []string
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	for _, n := range m.Streams {
		if n != 1 {
			continue
		}
		v := ratios[throughputKey(n)][Overlay+"/"+Underlay]
		notes = append(notes, fmt.Sprintf("target overlay >= 0.85x underlay throughput with 1 stream: %s (%s)", labrun.FormatRatio(v), verdict(v >= 0.85)))
	}
	for _, n := range m.Streams {
		v := ratios[throughputKey(n)][Overlay+"/"+Fastest]
		notes = append(notes, fmt.Sprintf("target overlay >= 0.97x fastest reference throughput with %d stream(s): %s (%s)", n, labrun.FormatRatio(v), verdict(v >= 0.97)))
	}
	v := ratios[p99Key][Overlay+"/"+Underlay]
	notes = append(notes, fmt.Sprintf("target request/response p99 <= 1.2x underlay: %s (%s)", labrun.FormatRatio(v), verdict(v > 0 && v <= 1.2)))
	return notes
}
