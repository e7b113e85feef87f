package gateway

import (
	"fmt"
	"strconv"
	"time"

	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
	"github.com/weft-dev/weft/internal/bench/report"
)

// measurements holds every round of every proxy and connection count.
type measurements struct {
	Connections []int
	Rounds      int
	runs        map[string]map[int][]result // proxy -> connections -> rounds
}

func (m *measurements) add(proxy string, connections int, r result) {
	if m.runs == nil {
		m.runs = map[string]map[int][]result{}
	}
	if m.runs[proxy] == nil {
		m.runs[proxy] = map[int][]result{}
	}
	m.runs[proxy][connections] = append(m.runs[proxy][connections], r)
}

// Proxies are the sides in table order.
func Proxies() []string { return []string{Weft, Nginx} }

// Metric keys of Report.Values["figures"] and ["ratios"].
func rpsKey(c int) string { return fmt.Sprintf("rps_%dc", c) }
func p50Key(c int) string { return fmt.Sprintf("p50_ms_%dc", c) }
func p99Key(c int) string { return fmt.Sprintf("p99_ms_%dc", c) }
func cpuKey(c int) string { return fmt.Sprintf("cpu_ms_per_1000_%dc", c) }

// cpuPerThousand is the proxy's CPU milliseconds per 1000 requests answered.
func cpuPerThousand(x result) float64 {
	if x.Requests == 0 {
		return 0
	}
	return ms(x.CPU) * 1000 / float64(x.Requests)
}

// RatioName is the ratio column and key: weft over nginx.
const RatioName = "weft/nginx"

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// buildReport takes the median over rounds of each figure, and the ratios
// from those unrounded medians.
func buildReport(m *measurements, tool string) *report.Report {
	r := &report.Report{Name: "gateway", Tool: tool, Columns: []string{"metric", Weft, Nginx, RatioName}, Values: map[string]any{}}
	figs := map[string]map[string]float64{}
	ratios := map[string]float64{}
	errorsBy := map[string]int64{}
	var perRound []map[string]any
	for _, c := range m.Connections {
		rows := []struct {
			key, label string
			pick       func(result) float64
			format     func(float64) string
		}{
			{rpsKey(c), fmt.Sprintf("requests/s, %d connections", c), func(x result) float64 { return x.RPS },
				func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }},
			{p50Key(c), fmt.Sprintf("latency p50, %d connections (ms)", c), func(x result) float64 { return ms(x.P50) },
				func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }},
			{p99Key(c), fmt.Sprintf("latency p99, %d connections (ms)", c), func(x result) float64 { return ms(x.P99) },
				func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }},
			{cpuKey(c), fmt.Sprintf("proxy CPU per 1000 requests, %d connections (ms)", c), cpuPerThousand,
				func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }},
		}
		for _, row := range rows {
			figs[row.key] = map[string]float64{}
			cells := []string{row.label}
			for _, proxy := range Proxies() {
				var values []float64
				for _, x := range m.runs[proxy][c] {
					values = append(values, row.pick(x))
				}
				figs[row.key][proxy] = labrun.Median(values)
				cells = append(cells, row.format(figs[row.key][proxy]))
			}
			ratios[row.key] = labrun.Ratio(figs[row.key][Weft], figs[row.key][Nginx])
			r.Rows = append(r.Rows, append(cells, labrun.FormatRatio(ratios[row.key])))
		}
		for _, proxy := range Proxies() {
			for i, x := range m.runs[proxy][c] {
				errorsBy[proxy] += x.Errors
				perRound = append(perRound, map[string]any{"proxy": proxy, "connections": c, "round": i + 1,
					"rps": x.RPS, "p50_ms": ms(x.P50), "p99_ms": ms(x.P99), "requests": x.Requests, "errors": x.Errors, "cpu_s": x.CPU.Seconds()})
			}
		}
		rps, p99, cpu := ratios[rpsKey(c)], ratios[p99Key(c)], ratios[cpuKey(c)]
		r.Notes = append(r.Notes,
			fmt.Sprintf("target %d connections: weft >= 1.0x nginx requests/s: %s (%s); CPU per request <= 1.0x nginx's: %s (%s); p99 no worse than nginx's: %s (%s)",
				c, labrun.FormatRatio(rps), verdict(rps >= 1.0), labrun.FormatRatio(cpu), verdict(cpu > 0 && cpu <= 1.0), labrun.FormatRatio(p99), verdict(p99 > 0 && p99 <= 1.0)))
	}
	for _, proxy := range Proxies() {
		if errorsBy[proxy] > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: %d requests failed or answered an error during the run; its figures count only the successful ones", proxy, errorsBy[proxy]))
		}
	}
	r.Notes = append(r.Notes, fmt.Sprintf("%d rounds, proxies alternating; each figure is the median over rounds", m.Rounds))
	r.Values["figures"] = figs
	r.Values["ratios"] = ratios
	r.Values["errors"] = errorsBy
	r.Values["measurements"] = perRound
	return r
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
