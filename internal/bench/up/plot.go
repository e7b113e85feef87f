package up

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// drawPlot writes <dir>/up-<timestamp>.png: up and down time against hosts,
// with the linear and quadratic least-squares fits of the up time, and returns its path.
func drawPlot(dir string, started time.Time, sizes []sizeResult, upFit *growthFit) (string, error) {
	p := plot.New()
	p.Title.Text = "weft bench up: time against hosts"
	p.X.Label.Text = "hosts"
	p.Y.Label.Text = "seconds"
	p.X.Min, p.Y.Min = 0, 0
	p.Add(plotter.NewGrid())

	up := make(plotter.XYs, len(sizes))
	down := make(plotter.XYs, len(sizes))
	for i, s := range sizes {
		up[i] = plotter.XY{X: float64(s.Hosts), Y: s.UpSeconds}
		down[i] = plotter.XY{X: float64(s.Hosts), Y: s.DownSeconds}
	}
	blue := color.RGBA{B: 200, A: 255}
	red := color.RGBA{R: 200, A: 255}
	for _, series := range []struct {
		name string
		xys  plotter.XYs
		col  color.Color
	}{{"weft up (all healthy)", up, blue}, {"weft down", down, red}} {
		line, points, err := plotter.NewLinePoints(series.xys)
		if err != nil {
			return "", fmt.Errorf("plotting %s: %w", series.name, err)
		}
		line.Color, points.Color = series.col, series.col
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add(series.name, line, points)
	}
	if upFit != nil {
		xMax := 0.0
		for _, xy := range up {
			xMax = max(xMax, xy.X)
		}
		for _, fit := range []struct {
			label  string
			f      func(float64) float64
			dashes []vg.Length
		}{
			{fmt.Sprintf("up, linear fit %.2fs + %.3fs·n (R² %.3f)", upFit.Linear.Intercept, upFit.Linear.Slope, upFit.Linear.R2),
				func(x float64) float64 { return upFit.Linear.Intercept + upFit.Linear.Slope*x }, []vg.Length{vg.Points(5), vg.Points(3)}},
			{fmt.Sprintf("up, quadratic fit %.2fs + %.5fs·n² (R² %.3f)", upFit.Quadratic.Intercept, upFit.Quadratic.Slope, upFit.Quadratic.R2),
				func(x float64) float64 { return upFit.Quadratic.Intercept + upFit.Quadratic.Slope*x*x }, []vg.Length{vg.Points(1), vg.Points(2)}},
		} {
			f := plotter.NewFunction(fit.f)
			f.Color, f.Dashes = blue, fit.dashes
			f.XMin, f.XMax = 0, xMax
			p.Add(f)
			p.Legend.Add(fit.label, f)
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	// Keep the largest points off the frame.
	for _, s := range sizes {
		p.X.Max = max(p.X.Max, 1.05*float64(s.Hosts))
		p.Y.Max = max(p.Y.Max, 1.15*s.UpSeconds, 1.15*s.DownSeconds)
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating results folder %s: %w", dir, err)
	}
	path := filepath.Join(dir, fmt.Sprintf("up-%s.png", started.UTC().Format("20060102T150405Z")))
	if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, path); err != nil {
		return "", fmt.Errorf("writing plot %s: %w", path, err)
	}
	return path, nil
}
