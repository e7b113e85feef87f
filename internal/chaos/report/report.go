package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/chaos"
)

// Window is one fault's time in effect.
type Window struct {
	Label      string
	Start, End time.Time
}

// Summary is what the text summary says.
type Summary struct {
	Requests, Failed int
	LongestOutage    time.Duration   // the longest run of seconds with errors
	Recovery         []FaultRecovery // per fault
}

// FaultRecovery is how long the load took to be clean again after a fault
// ended (0: it never erred, -1: it did not recover before the load ended).
type FaultRecovery struct {
	Label    string
	Duration time.Duration
	Recovery time.Duration
}

// Summarize computes the summary of a run's seconds.
func Summarize(start time.Time, secs []Second, windows []Window) Summary {
	var s Summary
	run := 0
	for _, x := range secs {
		s.Requests += x.Requests
		s.Failed += x.Errors
		if x.Errors > 0 {
			run++
			s.LongestOutage = max(s.LongestOutage, time.Duration(run)*time.Second)
		} else {
			run = 0
		}
	}
	for _, w := range windows {
		fr := FaultRecovery{Label: w.Label, Duration: w.End.Sub(w.Start)}
		endSec := int(w.End.Sub(start) / time.Second)
		// The last second with errors from the fault's start on, if it is
		// after the fault's end, is when the load recovered.
		last := -1
		for i := max(int(w.Start.Sub(start)/time.Second), 0); i < len(secs); i++ {
			if secs[i].Errors > 0 {
				last = i
			}
		}
		switch {
		case last < endSec:
			fr.Recovery = 0
		case last == len(secs)-1:
			fr.Recovery = -1
		default:
			fr.Recovery = time.Duration(last+1-endSec) * time.Second
		}
		s.Recovery = append(s.Recovery, fr)
	}
	return s
}

// Write writes timeline.png (when there was load), summary.txt and
// journal.json into dir and returns their paths.
// start is the origin of the timeline (the load's start); zero: the
// journal's start.
func Write(dir, title string, j *chaos.Journal, secs []Second, windows []Window, start time.Time, hadLoad bool) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating report folder %s: %w", dir, err)
	}
	var files []string
	if start.IsZero() {
		start, _ = time.Parse("2006-01-02T15:04:05.000000+00:00", j.Start)
	}
	jb, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, err
	}
	jp := filepath.Join(dir, "journal.json")
	if err := os.WriteFile(jp, append(jb, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", jp, err)
	}
	files = append(files, jp)
	loadStart := start
	sum := Summarize(loadStart, secs, windows)
	sp := filepath.Join(dir, "summary.txt")
	if err := os.WriteFile(sp, []byte(summaryText(title, j, sum, windows, loadStart, hadLoad)), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", sp, err)
	}
	files = append(files, sp)
	if hadLoad {
		pp := filepath.Join(dir, "timeline.png")
		if err := drawTimeline(pp, title, secs, windows, loadStart, j.Weft.Verdict); err != nil {
			return nil, err
		}
		files = append(files, pp)
	}
	return files, nil
}

func summaryText(title string, j *chaos.Journal, s Summary, windows []Window, start time.Time, hadLoad bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "experiment: %s\n%s\n\n", title, j.Weft.Verdict)
	fmt.Fprintf(&b, "status: %s, deviated: %t, duration: %.1fs\n", j.Status, j.Deviated, j.Duration)
	if hadLoad {
		pct := 0.0
		if s.Requests > 0 {
			pct = 100 * float64(s.Failed) / float64(s.Requests)
		}
		fmt.Fprintf(&b, "requests: %d, failed: %d (%.2f%%), longest outage: %s\n", s.Requests, s.Failed, pct, s.LongestOutage)
	} else {
		fmt.Fprintf(&b, "no load was run (--load URL:RATE or a load: section)\n")
	}
	for i, w := range windows {
		fmt.Fprintf(&b, "fault %s: from +%.1fs to +%.1fs (%s)", w.Label, w.Start.Sub(start).Seconds(), w.End.Sub(start).Seconds(), w.End.Sub(w.Start).Round(100*time.Millisecond))
		if hadLoad && i < len(s.Recovery) {
			switch r := s.Recovery[i].Recovery; {
			case r == 0:
				fmt.Fprintf(&b, ", recovery: no errors after the fault ended")
			case r < 0:
				fmt.Fprintf(&b, ", recovery: NOT recovered before the load ended")
			default:
				fmt.Fprintf(&b, ", recovery: %s after the fault ended", r)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
