package report

import (
	"image"
	"image/color"
	"testing"

	"golang.org/x/image/font/inconsolata"
)

var testInk = color.RGBA{R: 200, A: 255}

func inked(c *canvas, x, y int) bool { return c.img.RGBAAt(x, y) == testInk }

func TestCanvasLine(t *testing.T) {
	for _, tc := range []struct{ x0, y0, x1, y1 int }{
		{2, 2, 40, 2},   // horizontal
		{5, 30, 5, 3},   // vertical, upwards
		{3, 4, 45, 25},  // shallow
		{40, 3, 10, 45}, // steep, leftwards
	} {
		c := newCanvas(50, 50)
		c.line(tc.x0, tc.y0, tc.x1, tc.y1, 1, testInk)
		if !inked(c, tc.x0, tc.y0) || !inked(c, tc.x1, tc.y1) {
			t.Errorf("line %v: an end is not drawn", tc)
		}
		// One pixel per step along the longer axis, none outside the box.
		n := 0
		for y := range 50 {
			for x := range 50 {
				if !inked(c, x, y) {
					continue
				}
				n++
				if x < min(tc.x0, tc.x1) || x > max(tc.x0, tc.x1) || y < min(tc.y0, tc.y1) || y > max(tc.y0, tc.y1) {
					t.Errorf("line %v: pixel (%d,%d) outside its box", tc, x, y)
				}
			}
		}
		if want := max(abs(tc.x1-tc.x0), abs(tc.y1-tc.y0)) + 1; n != want {
			t.Errorf("line %v: %d pixels, want %d", tc, n, want)
		}
	}
	c := newCanvas(20, 20)
	c.line(5, 10, 15, 10, 3, testInk)
	if !inked(c, 10, 9) || !inked(c, 10, 11) || inked(c, 10, 8) || inked(c, 10, 12) {
		t.Error("a line 3 pixels wide is not 3 rows high")
	}
}

func TestCanvasFillBlends(t *testing.T) {
	c := newCanvas(10, 10)
	c.fill(image.Rect(2, 2, 6, 6), color.NRGBA{R: 255, A: 128})
	if got := c.img.RGBAAt(3, 3); got.R != 255 || got.G < 120 || got.G > 135 || got.B != got.G {
		t.Errorf("half-transparent red over white = %v, want pink", got)
	}
	if got := c.img.RGBAAt(7, 7); got != (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("outside the fill = %v, want white", got)
	}
}

func TestCanvasTextAlign(t *testing.T) {
	face := inconsolata.Regular8x16
	extent := func(a align) (lo, hi int) {
		c := newCanvas(200, 30)
		c.text(100, 20, "HHHH", face, testInk, a)
		lo, hi = 200, -1
		for y := range 30 {
			for x := range 200 {
				if c.img.RGBAAt(x, y) != (color.RGBA{255, 255, 255, 255}) {
					lo, hi = min(lo, x), max(hi, x)
				}
			}
		}
		return lo, hi
	}
	if lo, _ := extent(alignLeft); lo < 100 || lo > 102 {
		t.Errorf("left-aligned text starts at %d, want at 100", lo)
	}
	if _, hi := extent(alignRight); hi > 99 || hi < 96 {
		t.Errorf("right-aligned text ends at %d, want just before 100", hi)
	}
	if lo, hi := extent(alignCenter); abs((lo+hi)/2-100) > 2 {
		t.Errorf("centred text spans %d..%d, want around 100", lo, hi)
	}
}
