package report

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/image/font/inconsolata"
)

// The timeline's size and margins, in pixels.
const (
	timelineWidth  = 960
	timelineHeight = 720
	marginLeft     = 72 // the y ticks' labels
	marginRight    = 24
	marginTop      = 48 // the title and the verdict
	marginBottom   = 48 // the x ticks' labels and the x axis's label
	panelGap       = 28 // above each panel: its label
	lineWidth      = 2
)

// Colours of the timeline.
var (
	inkColor    = color.RGBA{R: 40, G: 40, B: 40, A: 255}
	gridColor   = color.RGBA{R: 225, G: 225, B: 225, A: 255}
	passColor   = color.RGBA{G: 120, A: 255}
	failColor   = color.RGBA{R: 190, A: 255}
	faultShade  = color.NRGBA{R: 255, G: 160, B: 0, A: 60}
	requestsInk = color.RGBA{R: 30, G: 90, B: 200, A: 255}
	errorsInk   = color.RGBA{R: 210, G: 30, B: 30, A: 255}
	latencyInk  = color.RGBA{R: 120, G: 60, B: 160, A: 255}
)

// timelinePanel is one of the stacked charts: a value of each second.
type timelinePanel struct {
	label string
	ink   color.RGBA
	value func(Second) float64
}

func timelinePanels() []timelinePanel {
	return []timelinePanel{
		{"requests/s", requestsInk, func(s Second) float64 { return float64(s.Requests) }},
		{"errors/s", errorsInk, func(s Second) float64 { return float64(s.Errors) }},
		{"p99 latency (ms)", latencyInk, func(s Second) float64 { return float64(s.P99) / float64(time.Millisecond) }},
	}
}

// timelineLayout places n panels one above the other and maps seconds to
// pixel columns; all panels share the x axis from 0 to xMax seconds.
type timelineLayout struct {
	plots []image.Rectangle // top to bottom
	xMax  float64
}

func newTimelineLayout(n int, xMax float64) timelineLayout {
	l := timelineLayout{xMax: xMax}
	h := (timelineHeight - marginTop - marginBottom - n*panelGap) / n
	top := marginTop
	for range n {
		top += panelGap
		l.plots = append(l.plots, image.Rect(marginLeft, top, timelineWidth-marginRight, top+h))
		top += h
	}
	return l
}

// x is the column of sec seconds in plot r.
func (l timelineLayout) x(r image.Rectangle, sec float64) int {
	return r.Min.X + int(math.Round(sec/l.xMax*float64(r.Dx()-1)))
}

// y is the row of v in plot r whose axis ends at yMax.
func (l timelineLayout) y(r image.Rectangle, v, yMax float64) int {
	return r.Max.Y - 1 - int(math.Round(v/yMax*float64(r.Dy()-1)))
}

// timelineXMax is how many seconds the x axis shows: the load's seconds
// and every fault window.
func timelineXMax(secs []Second, windows []Window, start time.Time) float64 {
	xMax := float64(max(len(secs), 1))
	for _, w := range windows {
		xMax = max(xMax, w.End.Sub(start).Seconds()+1)
	}
	return xMax
}

func drawTimeline(path, title string, secs []Second, windows []Window, start time.Time, verdict string) error {
	img := renderTimeline(title, secs, windows, start, verdict)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// renderTimeline draws requests/s, errors/s and p99 latency per second of
// the load, one panel each, with every fault's window shaded across them
// and labelled in the first.
func renderTimeline(title string, secs []Second, windows []Window, start time.Time, verdict string) *image.RGBA {
	regular, bold := inconsolata.Regular8x16, inconsolata.Bold8x16
	c := newCanvas(timelineWidth, timelineHeight)
	panels := timelinePanels()
	l := newTimelineLayout(len(panels), timelineXMax(secs, windows, start))

	c.text(marginLeft, 20, title, bold, inkColor, alignLeft)
	verdictInk := passColor
	if strings.Contains(verdict, "FAILED") {
		verdictInk = failColor
	}
	c.text(marginLeft, 40, shortVerdict(verdict), bold, verdictInk, alignLeft)

	xStep := niceStep(l.xMax / 10)
	for i, pn := range panels {
		r := l.plots[i]
		yMax := 1.0
		for _, s := range secs {
			yMax = max(yMax, pn.value(s))
		}
		yMax *= 1.15
		c.text(r.Min.X, r.Min.Y-8, pn.label, bold, inkColor, alignLeft)

		for wi, w := range windows {
			x0, x1 := w.Start.Sub(start).Seconds(), w.End.Sub(start).Seconds()
			x1 = max(x1, x0+0.25) // an instant fault (a kill) still shows
			c.fill(image.Rect(l.x(r, max(x0, 0)), r.Min.Y, l.x(r, min(x1, l.xMax))+1, r.Max.Y), faultShade)
			if i == 0 {
				c.text(l.x(r, max(x0, 0))+4, r.Min.Y+16*(1+wi%3), w.Label, regular, inkColor, alignLeft)
			}
		}

		yStep := niceStep(yMax / 4)
		for k := 0; float64(k)*yStep <= yMax; k++ {
			v := float64(k) * yStep
			row := l.y(r, v, yMax)
			if k > 0 {
				c.line(r.Min.X+1, row, r.Max.X-2, row, 1, gridColor)
			}
			c.text(r.Min.X-6, row+5, tickLabel(v, yStep), regular, inkColor, alignRight)
		}
		for k := 0; float64(k)*xStep <= l.xMax; k++ {
			sec := float64(k) * xStep
			col := l.x(r, sec)
			if k > 0 {
				c.line(col, r.Min.Y+1, col, r.Max.Y-2, 1, gridColor)
			}
			if i == len(panels)-1 {
				c.text(col, r.Max.Y+18, tickLabel(sec, xStep), regular, inkColor, alignCenter)
			}
		}

		for k := 1; k < len(secs); k++ {
			a, b := secs[k-1], secs[k]
			c.line(l.x(r, a.T+0.5), l.y(r, pn.value(a), yMax), l.x(r, b.T+0.5), l.y(r, pn.value(b), yMax), lineWidth, pn.ink)
		}
		if len(secs) == 1 {
			s := secs[0]
			c.dot(l.x(r, s.T+0.5), l.y(r, pn.value(s), yMax), lineWidth+2, pn.ink)
		}
		c.frame(r, inkColor)
	}
	last := l.plots[len(l.plots)-1]
	c.text((last.Min.X+last.Max.X)/2, timelineHeight-8, "seconds since the start (shaded: fault in effect)", regular, inkColor, alignCenter)
	return c.img
}

// niceStep is the tick spacing for about raw: 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if raw <= m*pow {
			return m * pow
		}
	}
	return 10 * pow
}

// tickLabel writes v with as many decimals as the step needs.
func tickLabel(v, step float64) string {
	decimals := max(0, int(-math.Floor(math.Log10(step))))
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

func shortVerdict(v string) string {
	if i := strings.Index(v, " — "); i > 0 {
		return v[:i]
	}
	return v
}
