package shift

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

func TestParseSteps(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr string
	}{
		{"10,25,50,100", []int{10, 25, 50, 100}, ""},
		{"10%, 100%", []int{10, 100}, ""},
		{"100", []int{100}, ""},
		{"10,25,50", nil, "does not end at 100"},
		{"50,25,100", nil, "steps must go up"},
		{"0,100", nil, "not a percentage"},
		{"10,,100", nil, "not a percentage"},
		{"ten,100", nil, "not a percentage"},
	} {
		got, err := ParseSteps(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--steps") {
				t.Errorf("ParseSteps(%q) error %v, want one naming --steps and %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !equalInts(got, tc.want) {
			t.Errorf("ParseSteps(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1%", 0.01, true}, {"0.5%", 0.005, true}, {"0.01", 0.01, true}, {"0", 0, true}, {"100%", 1, true},
		{"101%", 0, false}, {"-1%", 0, false}, {"one", 0, false}, {"2", 0, false},
	} {
		got, err := ParseRate(tc.in)
		if tc.ok != (err == nil) || (tc.ok && math.Abs(got-tc.want) > 1e-12) {
			t.Errorf("ParseRate(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--max-error-rate") {
			t.Errorf("ParseRate(%q) error %q does not name the flag", tc.in, err)
		}
	}
}

func TestCheck(t *testing.T) {
	good := model.ShiftSettings{Route: "/api", To: "v2", Steps: []int{10, 100}, Interval: 2 * time.Second, MaxErrorRate: 0.01, MaxP99: time.Second, Threshold: 2}
	if err := Check(good); err != nil {
		t.Fatalf("Check(good): %v", err)
	}
	bad := good
	bad.Route, bad.To, bad.Interval, bad.MaxP99, bad.Threshold = "api", "", 10*time.Millisecond, 0, 0
	err := Check(bad)
	for _, flag := range []string{"ROUTE", "--to", "--interval", "--max-p99", "--threshold"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("Check(bad) = %v, want it to name %s", err, flag)
		}
	}
	if err := CheckRoute(good, []model.Weight{{Service: "v2", Weight: 100}, {Service: "v1", Weight: 0}}); err == nil || !strings.Contains(err.Error(), "--to") {
		t.Errorf("CheckRoute with v2 at 100 = %v, want an error naming --to", err)
	}
}

func TestWeightsAt(t *testing.T) {
	for _, tc := range []struct {
		from []model.Weight
		pct  int
		want string
	}{
		{[]model.Weight{{Service: "v1", Weight: 100}, {Service: "v2", Weight: 0}}, 10, "v1=90 v2=10"},
		{[]model.Weight{{Service: "v1", Weight: 100}}, 25, "v1=75 v2=25"},
		{[]model.Weight{{Service: "v1", Weight: 1}}, 100, "v1=0 v2=100"},
		{[]model.Weight{{Service: "a", Weight: 1}, {Service: "b", Weight: 1}, {Service: "c", Weight: 1}, {Service: "v2", Weight: 0}}, 10, "a=30 b=30 c=30 v2=10"},
		{[]model.Weight{{Service: "a", Weight: 1}, {Service: "b", Weight: 2}, {Service: "v2", Weight: 0}}, 50, "a=17 b=33 v2=50"},
		{[]model.Weight{{Service: "a", Weight: 1}, {Service: "b", Weight: 1}}, 1, "a=50 b=49 v2=1"},
	} {
		got := WeightsAt(tc.from, "v2", tc.pct)
		if FormatWeights(got) != tc.want {
			t.Errorf("WeightsAt(%v, v2, %d) = %s, want %s", tc.from, tc.pct, FormatWeights(got), tc.want)
		}
		sum := 0
		for _, w := range got {
			sum += w.Weight
		}
		if sum != 100 {
			t.Errorf("WeightsAt(%v, v2, %d) sums to %d, want 100", tc.from, tc.pct, sum)
		}
	}
}

var bounds = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// hist builds cumulative bucket counts from per-bucket counts (len 15,
// the +Inf bucket last).
func hist(per map[int]int64) []int64 {
	out := make([]int64, len(bounds)+1)
	var run int64
	for i := range out {
		run += per[i]
		out[i] = run
	}
	return out
}

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		counts []int64
		q      float64
		want   float64
		ok     bool
	}{
		{"empty", hist(nil), 0.99, 0, false},
		{"all in the first bucket", hist(map[int]int64{0: 100}), 0.99, 0.000495, true},
		{"all in (0.5,1]", hist(map[int]int64{10: 100}), 0.99, 0.995, true},
		{"one percent slow", hist(map[int]int64{1: 99, 10: 1}), 0.99, 0.001, true},
		{"two percent slow", hist(map[int]int64{1: 98, 10: 2}), 0.99, 0.75, true},
		{"beyond the last bound", hist(map[int]int64{14: 10}), 0.99, 10, true},
		{"median", hist(map[int]int64{2: 50, 3: 50}), 0.5, 0.0025, true},
	} {
		got, ok := Quantile(tc.q, bounds, tc.counts)
		if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: Quantile(%v) = %v, %v; want %v, %v", tc.name, tc.q, got, ok, tc.want, tc.ok)
		}
	}
}

func sample(gw string, started time.Time, codes map[int]int64, per map[int]int64) model.GwSample {
	return model.GwSample{Gateway: gw, Started: started, Codes: codes, Bounds: bounds, Buckets: hist(per)}
}

var settings = model.ShiftSettings{Route: "/api", To: "v2", Steps: []int{10, 50, 100}, Interval: 2 * time.Second,
	MaxErrorRate: 0.01, MaxP99: 500 * time.Millisecond, Threshold: 2}

func TestAnalyse(t *testing.T) {
	t0 := time.Unix(1000, 0)
	t1 := time.Unix(2000, 0)
	base := map[string]model.GwSample{
		"gw1": sample("gw1", t0, map[int]int64{200: 100}, map[int]int64{1: 100}),
		"gw2": sample("gw2", t0, map[int]int64{200: 50}, map[int]int64{1: 50}),
	}
	for _, tc := range []struct {
		name       string
		cur        map[string]model.GwSample
		pass       bool
		requests   int64
		errors     int64
		reason     string
		noteOfGw   string
		noteSubstr string
	}{
		{"healthy on both", map[string]model.GwSample{
			"gw1": sample("gw1", t0, map[int]int64{200: 200}, map[int]int64{1: 200}),
			"gw2": sample("gw2", t0, map[int]int64{200: 150}, map[int]int64{1: 150}),
		}, true, 200, 0, "<=", "", ""},
		{"one in five fails, summed across gateways", map[string]model.GwSample{
			"gw1": sample("gw1", t0, map[int]int64{200: 180, 500: 20}, map[int]int64{1: 200}),
			"gw2": sample("gw2", t0, map[int]int64{200: 90, 500: 10}, map[int]int64{1: 100}),
		}, false, 150, 30, "error rate 20% above 1%", "", ""},
		{"slow", map[string]model.GwSample{
			"gw1": sample("gw1", t0, map[int]int64{200: 200}, map[int]int64{1: 100, 10: 100}),
			"gw2": sample("gw2", t0, map[int]int64{200: 50}, map[int]int64{1: 50}),
		}, false, 100, 0, "p99", "", ""},
		{"no requests", base, false, 0, 0, "no request reached v2", "", ""},
		{"a restarted gateway counts from its restart", map[string]model.GwSample{
			"gw1": sample("gw1", t1, map[int]int64{200: 10}, map[int]int64{1: 10}),
			"gw2": sample("gw2", t0, map[int]int64{200: 60}, map[int]int64{1: 60}),
		}, true, 20, 0, "<=", "gw1", "restarted"},
		{"a gateway without a sample at the end is left out", map[string]model.GwSample{
			"gw1": sample("gw1", t0, map[int]int64{200: 110}, map[int]int64{1: 110}),
		}, true, 10, 0, "<=", "gw2", "left out"},
	} {
		a := Analyse(settings, base, tc.cur)
		if a.Pass != tc.pass || a.Total.Requests != tc.requests || a.Total.Errors != tc.errors || !strings.Contains(a.Reason, tc.reason) {
			t.Errorf("%s: pass %v, %d requests, %d errors, %q; want %v, %d, %d, containing %q",
				tc.name, a.Pass, a.Total.Requests, a.Total.Errors, a.Reason, tc.pass, tc.requests, tc.errors, tc.reason)
		}
		if tc.noteOfGw != "" {
			found := false
			for _, f := range a.Gateways {
				if f.Gateway == tc.noteOfGw && strings.Contains(f.Note, tc.noteSubstr) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no note %q for %s in %+v", tc.name, tc.noteSubstr, tc.noteOfGw, a.Gateways)
			}
		}
	}
}

// run drives a shift with a backend that answers each interval as good
// says, and returns it when it ends.
func run(t *testing.T, s model.ShiftSettings, good func(interval int) bool) (model.Shift, []string) {
	t.Helper()
	t0 := time.Unix(1000, 0)
	sh := model.Shift{ID: "1", ShiftSettings: s, From: []model.Weight{{Service: "v1", Weight: 100}, {Service: "v2", Weight: 0}}, State: model.ShiftPending, Requested: t0}
	now := t0
	var served int64
	var weights []string
	cur := func() map[string]model.GwSample {
		return map[string]model.GwSample{"gw1": sample("gw1", t0, map[int]int64{200: served}, map[int]int64{1: served}), "gw2": {Gateway: "gw2", At: now}}
	}
	for i := 0; i < 50; i++ {
		samples := cur()
		for k, v := range samples {
			v.At = now
			samples[k] = v
		}
		next, wake := Advance(sh, Inputs{Now: now, Leader: "host1", Samples: samples, Gateways: []string{"gw1", "gw2"}})
		if w := FormatWeights(LiveWeights(next)); w != "" && (len(weights) == 0 || weights[len(weights)-1] != w) {
			weights = append(weights, w)
		}
		sh = next
		if wake.IsZero() {
			return sh, weights
		}
		if good(len(sh.Intervals)) {
			served += 10
		} else {
			served += 0 // no request reached it: not a pass
		}
		now = wake
	}
	t.Fatalf("shift did not end: %+v", sh)
	return sh, nil
}

func TestAdvance(t *testing.T) {
	t.Run("healthy is promoted step by step", func(t *testing.T) {
		sh, weights := run(t, settings, func(int) bool { return true })
		if sh.State != model.ShiftPromoted || len(sh.Intervals) != 3 {
			t.Fatalf("state %s after %d intervals, want promoted after 3: %+v", sh.State, len(sh.Intervals), sh)
		}
		want := []string{"v1=90 v2=10", "v1=50 v2=50", "v1=0 v2=100"}
		if strings.Join(weights, "|") != strings.Join(want, "|") {
			t.Errorf("weights went %v, want %v", weights, want)
		}
		for i, iv := range sh.Intervals {
			if !iv.Pass || iv.Step != i || iv.Total.Requests != 10 || iv.End.Sub(iv.Start) != settings.Interval {
				t.Errorf("interval %d: %+v", i, iv)
			}
		}
	})
	t.Run("no traffic rolls back at the first step after threshold intervals", func(t *testing.T) {
		sh, weights := run(t, settings, func(int) bool { return false })
		if sh.State != model.ShiftRolledBack || len(sh.Intervals) != 2 || sh.Failed != 2 {
			t.Fatalf("state %s after %d intervals (%d failed), want rolled-back after 2", sh.State, len(sh.Intervals), sh.Failed)
		}
		if weights[len(weights)-1] != "v1=100 v2=0" || !strings.Contains(sh.Message, "no request reached v2") {
			t.Errorf("ended on %s: %q", weights[len(weights)-1], sh.Message)
		}
		for _, iv := range sh.Intervals {
			if iv.Step != 0 {
				t.Errorf("interval at step %d, want every one at step 0", iv.Step)
			}
		}
	})
	t.Run("a failure below the threshold repeats the step", func(t *testing.T) {
		sh, _ := run(t, settings, func(n int) bool { return n != 1 })
		if sh.State != model.ShiftPromoted || len(sh.Intervals) != 4 || sh.Intervals[1].Step != 1 || sh.Intervals[2].Step != 1 {
			t.Fatalf("state %s, intervals %+v: want promoted after step 2 repeated", sh.State, sh.Intervals)
		}
	})
	t.Run("pending waits for every gateway's sample", func(t *testing.T) {
		t0 := time.Unix(1000, 0)
		sh := model.Shift{ShiftSettings: settings, From: []model.Weight{{Service: "v1", Weight: 100}}, State: model.ShiftPending, Requested: t0}
		in := Inputs{Now: t0.Add(time.Second), Leader: "h", Gateways: []string{"gw1"}}
		next, wake := Advance(sh, in)
		if next.State != model.ShiftPending || !wake.After(in.Now) {
			t.Fatalf("without samples: %s, wake %v; want still pending", next.State, wake)
		}
		in.Now = t0.Add(StartWait)
		if next, _ = Advance(sh, in); next.State != model.ShiftRunning {
			t.Fatalf("after StartWait: %s, want running", next.State)
		}
	})
	t.Run("a new leader resumes and says so", func(t *testing.T) {
		t0 := time.Unix(1000, 0)
		sh := model.Shift{ShiftSettings: settings, From: []model.Weight{{Service: "v1", Weight: 100}}, State: model.ShiftRunning, Leader: "host1", Step: 1,
			Current: &model.Interval{Step: 1, Start: t0}}
		next, wake := Advance(sh, Inputs{Now: t0.Add(time.Second), Leader: "host2"})
		if next.State != model.ShiftRunning || next.Leader != "host2" || !wake.Equal(t0.Add(settings.Interval)) {
			t.Fatalf("resumed: %s by %s, wake %v", next.State, next.Leader, wake)
		}
		if len(next.Events) != 1 || !strings.Contains(next.Events[0].Message, "host2 resumed the shift at step 2") {
			t.Errorf("events %+v", next.Events)
		}
		if sh.Events != nil {
			t.Errorf("Advance changed its input: %+v", sh.Events)
		}
	})
}
