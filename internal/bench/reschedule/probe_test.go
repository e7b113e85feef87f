package reschedule

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAnalyse(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	run := func(pattern string) []sample {
		// one request every 100ms from -300ms; '+' ok, '-' failed
		var out []sample
		for i, c := range pattern {
			// an answer takes 30ms
			out = append(out, sample{at: at(i*100 - 300), done: at(i*100 - 270), ok: c == '+'})
		}
		return out
	}
	cases := []struct {
		name    string
		pattern string
		want    outage
	}{
		{"recovers", "+++--+-+++", outage{Requests: 5, Failed: 3, Recovered: true, ServedIn: 430 * time.Millisecond}},
		{"never fails", "++++++", outage{Requests: 1, Failed: 0, Recovered: true, ServedIn: 0}},
		{"never recovers", "+++----", outage{Requests: 4, Failed: 4}},
		{"baseline failures do not count", "-+-++-++", outage{Requests: 4, Failed: 1, Recovered: true, ServedIn: 330 * time.Millisecond}},
		{"no request after the crash", "+++", outage{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := analyse(run(tc.pattern), t0); got != tc.want {
				t.Errorf("analyse(%s) = %+v, want %+v", tc.pattern, got, tc.want)
			}
		})
	}
	if got := (outage{Requests: 8, Failed: 2}).FailedShare(); got != 0.25 {
		t.Errorf("FailedShare = %v, want 0.25", got)
	}
	if !settled(run("+++--++++++++"), t0, 500*time.Millisecond) {
		t.Error("8 successes over 700ms after a failure should be settled for 500ms")
	}
	if settled(run("+++--++"), t0, 500*time.Millisecond) || settled(run("++++++++++"), t0, 500*time.Millisecond) {
		t.Error("settled without a long enough run of successes after a failure")
	}
}

func TestLeaderTimeline(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "c1", "hosts", "host3")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	log := `time=2026-12-02T10:54:20.000Z level=INFO msg="host down" host=host1
time=2026-12-02T10:54:30.743Z level=INFO msg="host down" host=host2
time=2026-12-02T10:54:31.000Z level=INFO msg="host down" host=host1
time=2026-12-02T10:54:35.000Z level=INFO msg="placement changed" added=[] removed=[] moved=[api-1]
time=2026-12-02T10:54:36.500Z level=INFO msg="placement changed" added=[] removed=[] moved="[gateway-1 web-1]"
not a log line
`
	if err := os.WriteFile(filepath.Join(dir, "agent.log"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	crash := time.Date(2026, 12, 2, 10, 54, 25, 0, time.UTC)
	got := leaderTimeline(root, "c1", []string{"host2", "host3"}, crash)
	want := timeline{SeenDown: 6 * time.Second, Moved: 11500 * time.Millisecond}
	if got != want {
		t.Errorf("leaderTimeline = %+v, want %+v (lines before the crash, other hosts and other containers ignored)", got, want)
	}
}
