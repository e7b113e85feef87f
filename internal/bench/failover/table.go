package failover

import (
	"fmt"
	"strconv"
	"time"

	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
	"github.com/weft-dev/weft/internal/bench/report"
)

// Columns of the report.
var columns = []string{"system", "failovers", "recovered", "first_ok_p50_ms", "first_ok_p99_ms", "first_ok_max_ms",
	"failed_per_failover_mean", "failed_per_failover_max", "in_flight_at_crash_mean", "two_holders_reachable", "two_holders_believed", "samples"}

// summary is one system's figures.
type summary struct {
	failovers, recovered int
	p50, p99, maxFirst   time.Duration
	failedMean           float64
	failedMax            int
	inFlightMean         float64
	samples, two, twoUp  int
}

func summarize(s *system) summary {
	var sum summary
	var firsts []time.Duration
	failed, inFlight := 0, 0
	for _, r := range s.rounds {
		sum.failovers++
		if r.recovered {
			sum.recovered++
			firsts = append(firsts, r.firstOK)
		}
		failed += r.failed
		inFlight += r.inFlight
		sum.failedMax = max(sum.failedMax, r.failed)
	}
	if len(firsts) > 0 {
		sum.p50 = labrun.Percentile(firsts, 50)
		sum.p99 = labrun.Percentile(firsts, 99)
		sum.maxFirst = labrun.Percentile(firsts, 100)
	}
	if sum.failovers > 0 {
		sum.failedMean = float64(failed) / float64(sum.failovers)
		sum.inFlightMean = float64(inFlight) / float64(sum.failovers)
	}
	sum.samples, sum.two, sum.twoUp = s.sampler.counts()
	return sum
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 0, 64)
}

func buildReport(o Options, started time.Time, systems []*system) *report.Report {
	r := &report.Report{
		Name: "failover", Started: started, Machine: report.ThisMachine(),
		Tool:    fmt.Sprintf("built-in client in the router namespace, %d req/s per VIP, %s timeout, new connection per request; holder fault: %s", o.Rate, o.Timeout, o.Fault),
		Columns: columns, Values: map[string]any{},
	}
	sums := map[string]summary{}
	for _, s := range systems {
		sum := summarize(s)
		sums[s.name] = sum
		r.Rows = append(r.Rows, []string{s.name, strconv.Itoa(sum.failovers), strconv.Itoa(sum.recovered),
			ms(sum.p50), ms(sum.p99), ms(sum.maxFirst),
			strconv.FormatFloat(sum.failedMean, 'f', 1, 64), strconv.Itoa(sum.failedMax),
			strconv.FormatFloat(sum.inFlightMean, 'f', 1, 64),
			strconv.Itoa(sum.twoUp), strconv.Itoa(sum.two), strconv.Itoa(sum.samples)})
		r.Values[s.name+"_first_ok_p50_ms"] = float64(sum.p50.Microseconds()) / 1000
		r.Values[s.name+"_first_ok_p99_ms"] = float64(sum.p99.Microseconds()) / 1000
		r.Values[s.name+"_first_ok_max_ms"] = float64(sum.maxFirst.Microseconds()) / 1000
		r.Values[s.name+"_failed_per_failover_mean"] = sum.failedMean
		r.Values[s.name+"_two_holders_reachable"] = sum.twoUp
		r.Values[s.name+"_two_holders_believed"] = sum.two
		r.Values[s.name+"_recovered"] = sum.recovered
		r.Values[s.name+"_failovers"] = sum.failovers
	}
	w := sums["weft"]
	probeWorth := float64(o.Rate) * 0.1
	r.Notes = append(r.Notes,
		fmt.Sprintf("weft goal: p99 under 1s (%s ms); failed per failover <= in flight + one probe period's worth (%.1f + %.0f); measured %.1f",
			ms(w.p99), w.inFlightMean, probeWorth, w.failedMean),
		"first_ok: fault complete (crash: processes frozen, then router leg down; cut: router leg down) -> end of the first successful request started after it; failed: requests started from one timeout before the crash to 1s after recovery",
		"two_holders_reachable: 10ms samples where both gateway hosts deliver the VIP with their router leg up; two_holders_believed: both deliver (weft) or are MASTER (keepalived), reachable or not")
	if k, ok := sums["keepalived"]; ok && w.p50 > 0 && w.p99 > 0 {
		msOf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		ratio50 := msOf(k.p50) / msOf(w.p50)
		ratio99 := msOf(k.p99) / msOf(w.p99)
		r.Values["keepalived_over_weft_p50"] = ratio50
		r.Values["keepalived_over_weft_p99"] = ratio99
		r.Notes = append(r.Notes, fmt.Sprintf("keepalived/weft time to first success: p50 %s, p99 %s (keepalived's man page: about 3.5 s with advert_int 1)",
			labrun.FormatRatio(ratio50), labrun.FormatRatio(ratio99)))
	}
	return r
}
