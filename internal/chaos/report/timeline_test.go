package report

import (
	"image"
	"image/color"
	"math"
	"testing"
	"time"
)

// TestTimelineDrawsTheData: the errors panel's line leaves its baseline
// only around the seconds that had errors, the fault's window is shaded
// where it was in effect and nowhere else, and the panels do not overlap.
func TestTimelineDrawsTheData(t *testing.T) {
	start := time.Unix(1000, 0)
	var secs []Second
	for s := range 20 {
		x := Second{T: float64(s), Requests: 50, P99: 3 * time.Millisecond}
		if s >= 3 && s <= 5 {
			x.Errors = 10
		}
		secs = append(secs, x)
	}
	windows := []Window{{Label: "loss", Start: start.Add(2 * time.Second), End: start.Add(4 * time.Second)}}
	img := renderTimeline("t", secs, windows, start, "VERDICT: PASSED — fine")
	if img.Bounds() != image.Rect(0, 0, timelineWidth, timelineHeight) {
		t.Fatalf("timeline is %v", img.Bounds())
	}
	l := newTimelineLayout(len(timelinePanels()), timelineXMax(secs, windows, start))
	for i := 1; i < len(l.plots); i++ {
		if l.plots[i].Overlaps(l.plots[i-1]) || l.plots[i].Max.Y > timelineHeight-marginBottom {
			t.Fatalf("panels %v overlap or leave the image", l.plots)
		}
	}

	// The errors line: at its baseline outside 2.5..6.5 s (the points
	// either side of the erring seconds), above it between.
	errs := l.plots[1]
	base := l.y(errs, 0, 1)
	lo, hi := l.x(errs, 2.5), l.x(errs, 6.5)
	raised := 0
	for py := errs.Min.Y; py < base-lineWidth; py++ {
		for px := errs.Min.X; px < errs.Max.X; px++ {
			if img.RGBAAt(px, py) != errorsInk {
				continue
			}
			if px < lo-1 || px > hi+1 { // the pen is 2 pixels wide
				t.Fatalf("errors line above its baseline at second %.1f", float64(px-errs.Min.X)/float64(errs.Dx()-1)*l.xMax)
			}
			raised++
		}
	}
	if raised == 0 {
		t.Fatal("the errors line never leaves its baseline")
	}

	// The shade: in most of the column at 3 s of each panel, none at 10 s.
	shaded := func(c color.RGBA) bool { return c.R > 240 && c.G > c.B+20 && c.B < 230 }
	for i, r := range l.plots {
		in, out := 0, 0
		for py := r.Min.Y; py < r.Max.Y; py++ {
			if shaded(img.RGBAAt(l.x(r, 3)+1, py)) {
				in++
			}
			if shaded(img.RGBAAt(l.x(r, 10)+1, py)) {
				out++
			}
		}
		if in < r.Dy()/2 || out != 0 {
			t.Errorf("panel %d: %d of %d pixels shaded at 3 s (in the fault), %d at 10 s", i, in, r.Dy(), out)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{0: 1, 0.07: 0.1, 0.3: 0.5, 1: 1, 1.2: 2, 3: 5, 7: 10, 23: 50, 140: 200} {
		if got := niceStep(raw); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceStep(%g) = %g, want %g", raw, got, want)
		}
	}
	if got := tickLabel(0.30000000000000004, 0.1); got != "0.3" {
		t.Errorf("tickLabel = %q, want 0.3", got)
	}
}
