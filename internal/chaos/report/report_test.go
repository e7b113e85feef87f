package report

import (
	"context"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/chaos"
)

func TestBucketAndSummary(t *testing.T) {
	start := time.Unix(1000, 0)
	var rs []result
	for s := range 10 {
		for k := range 10 {
			ok := !(s >= 3 && s <= 5) // seconds 3-5 fail
			rs = append(rs, result{at: start.Add(time.Duration(s)*time.Second + time.Duration(k)*100*time.Millisecond), latency: time.Duration(k+1) * time.Millisecond, ok: ok})
		}
	}
	secs := bucket(start, rs)
	if len(secs) != 10 || secs[0].Requests != 10 || secs[4].Errors != 10 || secs[0].P99 != 10*time.Millisecond {
		t.Fatalf("buckets %+v", secs)
	}
	w := []Window{{Label: "cut", Start: start.Add(2 * time.Second), End: start.Add(4 * time.Second)}}
	s := Summarize(start, secs, w)
	if s.Requests != 100 || s.Failed != 30 || s.LongestOutage != 3*time.Second {
		t.Errorf("summary %+v", s)
	}
	if s.Recovery[0].Recovery != 2*time.Second {
		t.Errorf("recovery %s, want 2s (errors until second 5, fault ended at 4)", s.Recovery[0].Recovery)
	}
}

func TestLoadAndReportFiles(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%10 == 0 {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	l := &Load{URL: srv.URL, Rate: 50}
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	l.Run(ctx)
	secs := l.Seconds()
	total, errs := 0, 0
	for _, s := range secs {
		total += s.Requests
		errs += s.Errors
	}
	if total < 40 || errs == 0 {
		t.Fatalf("load sent %d with %d errors", total, errs)
	}
	j := &chaos.Journal{Status: "completed", Start: "2026-01-01T00:00:00.000000+00:00", Weft: &chaos.WeftReport{Verdict: "VERDICT: PASSED — x"}}
	dir := t.TempDir()
	w := []Window{{Label: "loss", Start: l.Start().Add(200 * time.Millisecond), End: l.Start().Add(600 * time.Millisecond)}}
	files, err := Write(dir, "t", j, secs, w, l.Start(), true)
	if err != nil || len(files) != 3 {
		t.Fatalf("files %v %v", files, err)
	}
	f, err := os.Open(filepath.Join(dir, "timeline.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 500 {
		t.Fatalf("timeline is not a PNG of a useful size: %v", err)
	}
	sum, _ := os.ReadFile(filepath.Join(dir, "summary.txt"))
	for _, want := range []string{"VERDICT: PASSED", "requests:", "fault loss"} {
		if !strings.Contains(string(sum), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
}
