package cli

import (
	"strings"
	"testing"
	"time"
)

func TestShiftFlags(t *testing.T) {
	good := shiftFlags{to: "v2", steps: "10,25,50,100", interval: "30s", maxErrorRate: "1%", maxP99: "500ms", threshold: 2}
	s, err := good.settings("/api")
	if err != nil || s.Interval != 30*time.Second || s.MaxErrorRate != 0.01 || s.MaxP99 != 500*time.Millisecond || len(s.Steps) != 4 {
		t.Fatalf("good flags: %+v, %v", s, err)
	}
	for _, tc := range []struct {
		change func(*shiftFlags)
		route  string
		want   []string
	}{
		{func(f *shiftFlags) { f.steps = "10,50" }, "/api", []string{"--steps", "end at 100"}},
		{func(f *shiftFlags) { f.interval = "30" }, "/api", []string{"--interval", "30s"}},
		{func(f *shiftFlags) { f.maxErrorRate = "2" }, "/api", []string{"--max-error-rate", "1%"}},
		{func(f *shiftFlags) { f.maxP99 = "fast" }, "/api", []string{"--max-p99", "500ms"}},
		{func(f *shiftFlags) { f.threshold = 0 }, "/api", []string{"--threshold"}},
		{func(f *shiftFlags) { f.to = "" }, "/api", []string{"--to"}},
		{func(f *shiftFlags) {}, "api", []string{"ROUTE", "/api/v1/products"}},
		{func(f *shiftFlags) { f.interval, f.maxP99 = "x", "y" }, "/api", []string{"--interval", "--max-p99"}},
	} {
		f := good
		tc.change(&f)
		_, err := f.settings(tc.route)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%+v %s: error %v, want it to say %q", f, tc.route, err, w)
			}
		}
	}
}
