package gateway

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) lines() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), "\n")
}

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
			var out lockedBuf
			a := newAccessLog(&out)
			if err := a.setSampling(AccessLogSampling{Sample: tc.sample}); err != nil {
				t.Fatal(err)
			}
			for range 1000 {
				a.write(&accessEntry{Method: "GET", Path: "/", Status: tc.status})
			}
			a.flush()
			if n := out.lines(); n < tc.min || n > tc.max {
				t.Errorf("%d lines of 1000, want %d..%d", n, tc.min, tc.max)
			}
		})
	}
}

func TestAccessLogSamplingRefusesBadFractions(t *testing.T) {
	for _, f := range []float64{-0.1, 1.5} {
		if err := newAccessLog(&lockedBuf{}).setSampling(AccessLogSampling{Sample: ptr(f)}); err == nil {
			t.Errorf("sample %v accepted", f)
		}
	}
}
