package report

import (
	"image"
	"image/color"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
)

// canvas is a white RGBA image with the few drawing operations the
// timeline needs: rectangles (blended, so a translucent colour shades),
// lines of a width, and text in a bitmap font. The standard library's
// image packages and x/image's fixed-size fonts are all it uses, so weft
// links no plotting library for one chart.
type canvas struct{ img *image.RGBA }

func newCanvas(w, h int) *canvas {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	return &canvas{img: img}
}

// fill paints r with col over what is there: a translucent col shades.
func (c *canvas) fill(r image.Rectangle, col color.Color) {
	draw.Draw(c.img, r.Intersect(c.img.Bounds()), image.NewUniform(col), image.Point{}, draw.Over)
}

// frame draws the outline of r, one pixel wide, inside r.
func (c *canvas) frame(r image.Rectangle, col color.Color) {
	c.line(r.Min.X, r.Min.Y, r.Max.X-1, r.Min.Y, 1, col)
	c.line(r.Min.X, r.Max.Y-1, r.Max.X-1, r.Max.Y-1, 1, col)
	c.line(r.Min.X, r.Min.Y, r.Min.X, r.Max.Y-1, 1, col)
	c.line(r.Max.X-1, r.Min.Y, r.Max.X-1, r.Max.Y-1, 1, col)
}

// line draws from (x0, y0) to (x1, y1), both ends included, with a square
// pen width pixels wide (Bresenham).
func (c *canvas) line(x0, y0, x1, y1, width int, col color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		c.dot(x0, y0, width, col)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

// dot paints a width×width square with (x, y) at its centre.
func (c *canvas) dot(x, y, width int, col color.Color) {
	lo := (width - 1) / 2
	r := image.Rect(x-lo, y-lo, x-lo+width, y-lo+width).Intersect(c.img.Bounds())
	for py := r.Min.Y; py < r.Max.Y; py++ {
		for px := r.Min.X; px < r.Max.X; px++ {
			c.img.Set(px, py, col)
		}
	}
}

// align places text relative to its x.
type align int

const (
	alignLeft align = iota
	alignCenter
	alignRight
)

// text writes s with its baseline at y, starting, centred on or ending at x.
func (c *canvas) text(x, y int, s string, face font.Face, col color.Color, a align) {
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: face}
	switch w := d.MeasureString(s).Ceil(); a {
	case alignCenter:
		x -= w / 2
	case alignRight:
		x -= w
	}
	d.Dot = fixed.P(x, y)
	d.DrawString(s)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
