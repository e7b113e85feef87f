package gateway

import (
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/syncbuf"
)

func ptr(f float64) *float64 { return &f }

func TestAccessLogSampling(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sample   *float64
		status   int
		min, max int // lines out of 1000 requests
	}{
		{"default logs all", nil, 200, 1000, 1000},
		{"1 logs all", ptr(1), 200, 1000, 1000},
		{"0 turns it off", ptr(0), 200, 0, 0},
		{"0 turns off errors too", ptr(0), 502, 0, 0},
		// Binomial(1000, 0.1): mean 100, sd 9.5; 40..160 is over 6 sd.
		{"a tenth", ptr(0.1), 200, 40, 160},
		{"errors always when sampling", ptr(0.1), 503, 1000, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncbuf.Buffer
			a := newAccessLog(&out)
			if err := a.setSampling(AccessLogSampling{Sample: tc.sample}); err != nil {
				t.Fatal(err)
			}
			for range 1000 {
				a.write(&accessEntry{Method: "GET", Path: "/", Status: tc.status})
			}
			a.flush()
			if n := strings.Count(out.String(), "\n"); n < tc.min || n > tc.max {
				t.Errorf("%d lines of 1000, want %d..%d", n, tc.min, tc.max)
			}
		})
	}
}

func TestAccessLogSamplingRefusesBadFractions(t *testing.T) {
	for _, f := range []float64{-0.1, 1.5} {
		if err := newAccessLog(&syncbuf.Buffer{}).setSampling(AccessLogSampling{Sample: ptr(f)}); err == nil {
			t.Errorf("sample %v accepted", f)
		}
	}
}
