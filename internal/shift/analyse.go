package shift

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// Quantile is Prometheus's histogram_quantile over one histogram: bounds
// are the finite upper bounds in seconds, counts the cumulative count at
// each, with the total (the +Inf bucket) last. It interpolates linearly
// inside the bucket where the rank falls; a rank in the +Inf bucket gives
// the highest finite bound. ok is false when the histogram is empty.
func Quantile(q float64, bounds []float64, counts []int64) (seconds float64, ok bool) {
	if len(counts) != len(bounds)+1 || len(bounds) == 0 {
		return 0, false
	}
	total := counts[len(counts)-1]
	if total <= 0 {
		return 0, false
	}
	rank := q * float64(total)
	i, _ := slices.BinarySearchFunc(counts, rank, func(c int64, r float64) int {
		if float64(c) < r {
			return -1
		}
		return 1
	})
	if i >= len(bounds) {
		return bounds[len(bounds)-1], true
	}
	lower, below := 0.0, int64(0)
	if i > 0 {
		lower, below = bounds[i-1], counts[i-1]
	}
	in := counts[i] - below
	if in <= 0 {
		return bounds[i], true
	}
	return lower + (bounds[i]-lower)*(rank-float64(below))/float64(in), true
}

// delta is cur minus base: what one gateway counted over an interval. A
// gateway that restarted (another start time, or a counter that went down)
// counted from its restart, so the delta is cur itself, noted.
func delta(base, cur model.GwSample, hasBase bool) (model.GwSample, string) {
	if !hasBase {
		return cur, "no sample at the interval's start: counted since the gateway started"
	}
	if !base.Started.Equal(cur.Started) || !slices.Equal(base.Bounds, cur.Bounds) || len(base.Buckets) != len(cur.Buckets) {
		return cur, "restarted: counted since its restart"
	}
	d := cur
	d.Codes = map[int]int64{}
	for code, n := range cur.Codes {
		d.Codes[code] = n - base.Codes[code]
		if d.Codes[code] < 0 {
			return cur, "restarted: counted since its restart"
		}
	}
	d.Buckets = make([]int64, len(cur.Buckets))
	for i := range cur.Buckets {
		d.Buckets[i] = cur.Buckets[i] - base.Buckets[i]
		if d.Buckets[i] < 0 {
			return cur, "restarted: counted since its restart"
		}
	}
	return d, ""
}

// figures are a delta's requests, errors (5xx, which include the gateway's
// own 502 and 504 when the backend could not be reached or timed out) and
// p99.
func figures(gateway string, d model.GwSample) model.Figures {
	f := model.Figures{Gateway: gateway}
	for code, n := range d.Codes {
		f.Requests += n
		if code >= 500 {
			f.Errors += n
		}
	}
	if f.Requests > 0 {
		f.ErrorRate = float64(f.Errors) / float64(f.Requests)
	}
	if p, ok := Quantile(0.99, d.Bounds, d.Buckets); ok {
		f.P99 = time.Duration(p * float64(time.Second))
	}
	return f
}

// Analysis is the verdict on one interval.
type Analysis struct {
	Gateways []model.Figures
	Total    model.Figures
	Pass     bool
	Reason   string
}

// Analyse measures the new backend over an interval from every gateway's
// samples at its start (base) and end (cur), and judges it against the
// limits. The total adds every gateway's counts and histogram buckets
// before taking the error rate and p99, so it weighs each gateway by its
// traffic. An interval in which no request reached the new backend does
// not pass: there is nothing to judge, and a version nobody could reach
// must not be promoted (Flagger counts missing metrics as a failed check
// too).
func Analyse(s model.ShiftSettings, base, cur map[string]model.GwSample) Analysis {
	var a Analysis
	var sum model.GwSample
	for _, gw := range slices.Sorted(maps.Keys(cur)) {
		b, ok := base[gw]
		d, note := delta(b, cur[gw], ok)
		f := figures(gw, d)
		f.Note = note
		a.Gateways = append(a.Gateways, f)
		switch {
		case sum.Codes == nil:
			sum = model.GwSample{Codes: map[int]int64{}, Bounds: d.Bounds, Buckets: make([]int64, len(d.Buckets))}
			fallthrough
		case slices.Equal(sum.Bounds, d.Bounds) && len(sum.Buckets) == len(d.Buckets):
			for code, n := range d.Codes {
				sum.Codes[code] += n
			}
			for i, n := range d.Buckets {
				sum.Buckets[i] += n
			}
		default:
			a.Gateways[len(a.Gateways)-1].Note = "other histogram buckets: left out of the total"
		}
	}
	for gw := range base {
		if _, ok := cur[gw]; !ok {
			a.Gateways = append(a.Gateways, model.Figures{Gateway: gw, Note: "no sample at the interval's end: left out"})
		}
	}
	a.Total = figures("", sum)
	var why []string
	if a.Total.Requests == 0 {
		why = append(why, fmt.Sprintf("no request reached %s: nothing to judge", s.To))
	}
	if a.Total.ErrorRate > s.MaxErrorRate {
		why = append(why, fmt.Sprintf("error rate %s above %s", Percent(a.Total.ErrorRate), Percent(s.MaxErrorRate)))
	}
	if a.Total.Requests > 0 && a.Total.P99 > s.MaxP99 {
		why = append(why, fmt.Sprintf("p99 %s above %s", a.Total.P99.Round(time.Millisecond), s.MaxP99))
	}
	a.Pass = len(why) == 0
	if a.Pass {
		a.Reason = fmt.Sprintf("error rate %s <= %s, p99 %s <= %s", Percent(a.Total.ErrorRate), Percent(s.MaxErrorRate),
			a.Total.P99.Round(100*time.Microsecond), s.MaxP99)
	} else {
		a.Reason = strings.Join(why, "; ")
	}
	return a
}

// Percent writes a fraction as a percentage: 0.0125 is "1.25%".
func Percent(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", 100*f), "0"), ".") + "%"
}
