package up

import (
	"fmt"
	"math"
)

// lineFit is y = Intercept + Slope·x fitted by least squares.
type lineFit struct {
	Intercept float64 `json:"intercept"`
	Slope     float64 `json:"slope"`
	RSS       float64 `json:"rss"` // residual sum of squares
	R2        float64 `json:"r2"`
}

// growthFit compares two shapes of growth of a cost y with the host count
// n, each with two parameters so neither wins just by having more:
// linear y = a + b·n and quadratic y = a + c·n². It also gives the exponent
// k of y ≈ A·n^k.
type growthFit struct {
	Points    int     `json:"points"`
	Linear    lineFit `json:"linear"`    // x = n
	Quadratic lineFit `json:"quadratic"` // x = n²
	Exponent  float64 `json:"exponent"`  // slope of log y against log n; NaN when some y <= 0
	Better    string  `json:"better"`    // "linear", "quadratic", or "undetermined" (fewer than 3 distinct sizes)
}

// fitGrowth fits ys measured at host counts ns.
func fitGrowth(ns []int, ys []float64) (growthFit, error) {
	if len(ns) != len(ys) {
		return growthFit{}, fmt.Errorf("fitting growth: %d sizes but %d measurements", len(ns), len(ys))
	}
	distinct := map[int]bool{}
	for _, n := range ns {
		distinct[n] = true
	}
	if len(distinct) < 2 {
		return growthFit{}, fmt.Errorf("fitting growth: need at least 2 different sizes, got %d", len(distinct))
	}
	lin := make([]float64, len(ns))
	sq := make([]float64, len(ns))
	logN := make([]float64, len(ns))
	logY := make([]float64, len(ns))
	positive := true
	for i, n := range ns {
		lin[i] = float64(n)
		sq[i] = float64(n) * float64(n)
		logN[i] = math.Log(float64(n))
		if ys[i] <= 0 {
			positive = false
		} else {
			logY[i] = math.Log(ys[i])
		}
	}
	g := growthFit{Points: len(ns), Linear: leastSquares(lin, ys), Quadratic: leastSquares(sq, ys), Exponent: math.NaN()}
	if positive {
		g.Exponent = leastSquares(logN, logY).Slope
	}
	switch {
	case len(distinct) < 3:
		// Two sizes: both lines pass through both points.
		g.Better = "undetermined"
	case g.Linear.RSS <= g.Quadratic.RSS:
		g.Better = "linear"
	default:
		g.Better = "quadratic"
	}
	return g, nil
}

// leastSquares fits y = a + b·x; xs must hold at least two different values.
func leastSquares(xs, ys []float64) lineFit {
	n := float64(len(xs))
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var sxx, sxy, syy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		sxx += dx * dx
		sxy += dx * dy
		syy += dy * dy
	}
	f := lineFit{Slope: sxy / sxx}
	f.Intercept = my - f.Slope*mx
	for i := range xs {
		r := ys[i] - (f.Intercept + f.Slope*xs[i])
		f.RSS += r * r
	}
	f.R2 = 1
	if syy > 0 {
		f.R2 = 1 - f.RSS/syy
	}
	return f
}

// describe says in one sentence how the cost grows.
func (g growthFit) describe(what string) string {
	exp := ""
	if !math.IsNaN(g.Exponent) {
		exp = fmt.Sprintf("; power law n^%.2f", g.Exponent)
	}
	fits := fmt.Sprintf("linear %.3g + %.3g·n (R² %.3f, RSS %.3g) vs quadratic %.3g + %.3g·n² (R² %.3f, RSS %.3g)%s",
		g.Linear.Intercept, g.Linear.Slope, g.Linear.R2, g.Linear.RSS,
		g.Quadratic.Intercept, g.Quadratic.Slope, g.Quadratic.R2, g.Quadratic.RSS, exp)
	if g.Better == "undetermined" {
		return fmt.Sprintf("%s growth undetermined from %d points of 2 sizes (both fits pass through them): %s", what, g.Points, fits)
	}
	return fmt.Sprintf("%s grows %s with hosts (least squares over %d sizes): %s", what, g.Better, g.Points, fits)
}
