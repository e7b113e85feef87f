package report

import (
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

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

func drawTimeline(path, title string, secs []Second, windows []Window, start time.Time, verdict string) error {
	n := len(secs)
	xMax := float64(max(n, 1))
	for _, w := range windows {
		xMax = max(xMax, w.End.Sub(start).Seconds()+1)
	}
	panels := []struct {
		label string
		col   color.Color
		value func(Second) float64
	}{
		{"requests/s", color.RGBA{R: 30, G: 90, B: 200, A: 255}, func(s Second) float64 { return float64(s.Requests) }},
		{"errors/s", color.RGBA{R: 210, G: 30, B: 30, A: 255}, func(s Second) float64 { return float64(s.Errors) }},
		{"p99 latency (ms)", color.RGBA{R: 120, G: 60, B: 160, A: 255}, func(s Second) float64 { return float64(s.P99) / float64(time.Millisecond) }},
	}
	plots := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		p := plot.New()
		if i == 0 {
			p.Title.Text = title + "\n" + shortVerdict(verdict)
			p.Title.TextStyle.Color = color.RGBA{G: 120, A: 255}
			if strings.Contains(verdict, "FAILED") {
				p.Title.TextStyle.Color = color.RGBA{R: 190, A: 255}
			}
		}
		p.Y.Label.Text = pn.label
		if i == len(panels)-1 {
			p.X.Label.Text = "seconds since the start (shaded: fault in effect)"
		}
		p.X.Min, p.X.Max, p.Y.Min = 0, xMax, 0
		yMax := 1.0
		xys := make(plotter.XYs, n)
		for k, s := range secs {
			v := pn.value(s)
			xys[k] = plotter.XY{X: s.T + 0.5, Y: v}
			yMax = max(yMax, v)
		}
		p.Y.Max = yMax * 1.15
		p.Add(plotter.NewGrid())
		for wi, w := range windows {
			x0, x1 := w.Start.Sub(start).Seconds(), w.End.Sub(start).Seconds()
			x1 = max(x1, x0+0.25) // an instant fault (a kill) still shows
			poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: p.Y.Max}, {X: x0, Y: p.Y.Max}})
			if err != nil {
				return err
			}
			poly.Color = color.NRGBA{R: 255, G: 160, B: 0, A: 60}
			poly.LineStyle.Width = 0
			p.Add(poly)
			if i == 0 {
				labels, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x0, Y: p.Y.Max * (0.95 - 0.1*float64(wi%3))}}, Labels: []string{" " + w.Label}})
				if err == nil {
					p.Add(labels)
				}
			}
		}
		if n > 0 {
			line, err := plotter.NewLine(xys)
			if err != nil {
				return err
			}
			line.Color = pn.col
			line.Width = vg.Points(1.5)
			p.Add(line)
		}
		plots[i] = []*plot.Plot{p}
	}
	img := vgimg.New(24*vg.Centimeter, 18*vg.Centimeter)
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadY: vg.Points(6)}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer f.Close()
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func shortVerdict(v string) string {
	if i := strings.Index(v, " — "); i > 0 {
		return v[:i]
	}
	return v
}
