package overlay

import (
	"strings"
	"testing"
	"time"
)

func TestParseIperf(t *testing.T) {
	bps, err := parseIperf([]byte(`{"start":{},"end":{"sum_sent":{"bits_per_second":9.9e9},"sum_received":{"bits_per_second":9.5e9}}}`))
	if err != nil || bps != 9.5e9 {
		t.Errorf("parseIperf = %v, %v; want the receiver's 9.5e9", bps, err)
	}
	if _, err := parseIperf([]byte(`{"error":"unable to connect to server"}`)); err == nil || !strings.Contains(err.Error(), "unable to connect") {
		t.Errorf("iperf3's own error is lost: %v", err)
	}
}

func TestBuildReportFromKnownFigures(t *testing.T) {
	m := &measurements{Streams: []int{1, 4}, Rounds: 3, MTU: [numPaths]int{1450, 1500, 1450, 1450, 1450}, DF: [numPaths]string{dfBlackHole, dfOK, dfOK, dfOK, dfOK}}
	for _, gbit := range []float64{1, 3, 2} {
		m.addThroughput(0, 1, gbit*1e9)   // overlay: best 3, median 2
		m.addThroughput(1, 1, 2*gbit*1e9) // underlay: best 6, median 4
		m.addThroughput(2, 1, gbit*1e9)   // reference: best 3, median 2
		m.addThroughput(3, 1, gbit*1e9)   // fastest reference: best 3, median 2
		m.addThroughput(4, 1, gbit*1e9)   // overlay without firewall: best 3, median 2
		for p := range numPaths {
			m.addThroughput(p, 4, float64(p+1)*1e9)
		}
	}
	for p, base := range []time.Duration{20, 10, 20, 20, 20} {
		var samples []time.Duration
		for i := 1; i <= 100; i++ {
			samples = append(samples, base*time.Microsecond+time.Duration(i)*time.Microsecond)
		}
		m.addLatency(p, samples)
	}
	r := buildReport(m, "test")
	checkReportShape := func(row int, want []string) {
		t.Helper()
		if strings.Join(r.Rows[row], "|") != strings.Join(want, "|") {
			t.Errorf("row %d = %v, want %v", row, r.Rows[row], want)
		}
	}
	checkReportShape(0, []string{"TCP throughput, 1 stream (Gbit/s)", "3.00", "6.00", "3.00", "3.00", "3.00", "0.500", "1.000", "1.000", "0.500", "0.500", "1.000"})
	checkReportShape(1, []string{"TCP throughput, 4 streams (Gbit/s)", "1.00", "2.00", "3.00", "4.00", "5.00", "0.500", "0.250", "0.333", "2.000", "1.500", "0.200"})
	checkReportShape(2, []string{"TCP 1-byte request/response p50 (µs)", "70.0", "60.0", "70.0", "70.0", "70.0", "1.167", "1.000", "1.000", "1.167", "1.167", "1.000"})
	checkReportShape(3, []string{"TCP 1-byte request/response p99 (µs)", "119.0", "109.0", "119.0", "119.0", "119.0", "1.092", "1.000", "1.000", "1.092", "1.092", "1.000"})
	if got := r.Values["median_figures"].(map[string]map[string]float64)[throughputKey(1)][Underlay]; got != 4 {
		t.Errorf("median underlay throughput = %v, want 4", got)
	}
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"overlay: don't-fragment pings of 1422 bytes", "4 stream(s): 0.250 (NOT met)", "fastest reference throughput with 1 stream(s): 1.000 (met)", "0.85x underlay throughput with 1 stream: 0.500 (NOT met)", "p99 <= 1.2x underlay: 1.092 (met)"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}
