// Package shift is the pure logic of a weighted traffic shift: the step
// plan and its weights, the analysis of an interval from the gateways'
// metric samples, and the decision that moves a shift on. It does no I/O;
// the leader agent reads the samples, calls Advance and writes the result.
package shift

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// Defaults of `weft shift`, those of the example.
var (
	DefaultSteps        = []int{10, 25, 50, 100}
	DefaultInterval     = 30 * time.Second
	DefaultMaxErrorRate = 0.01
	DefaultMaxP99       = 500 * time.Millisecond
	DefaultThreshold    = 2
)

// ParseSteps reads --steps: ascending percentages ending at 100.
func ParseSteps(text string) ([]int, error) {
	var steps []int
	for f := range strings.SplitSeq(text, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f), "%")))
		if err != nil || n < 1 || n > 100 {
			return nil, fmt.Errorf("--steps: %q is not a percentage from 1 to 100; write them like 10,25,50,100", f)
		}
		if len(steps) > 0 && n <= steps[len(steps)-1] {
			return nil, fmt.Errorf("--steps: %d after %d; steps must go up, e.g. 10,25,50,100", n, steps[len(steps)-1])
		}
		steps = append(steps, n)
	}
	if len(steps) == 0 || steps[len(steps)-1] != 100 {
		return nil, fmt.Errorf("--steps: %q does not end at 100; the last step is the promotion, e.g. 10,25,50,100", text)
	}
	return steps, nil
}

// ParseRate reads --max-error-rate: "1%" or a fraction such as "0.01".
func ParseRate(text string) (float64, error) {
	t := strings.TrimSpace(text)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if pct {
		v /= 100
	}
	if err != nil || v < 0 || v > 1 {
		return 0, fmt.Errorf("--max-error-rate: %q is not a rate from 0%% to 100%%; write it like 1%% or 0.01", text)
	}
	return v, nil
}

// Check reports every problem of the settings, naming the flag and the fix.
func Check(s model.ShiftSettings) error {
	var errs []error
	if !strings.HasPrefix(s.Route, "/") {
		errs = append(errs, fmt.Errorf("ROUTE: %q is not a route prefix; name a route of the cluster file, e.g. /api/v1/products", s.Route))
	}
	if s.To == "" {
		errs = append(errs, errors.New("--to: missing; name the service to shift the traffic to"))
	}
	if len(s.Steps) == 0 || s.Steps[len(s.Steps)-1] != 100 || !slices.IsSorted(s.Steps) || s.Steps[0] < 1 {
		errs = append(errs, fmt.Errorf("--steps: %v; write ascending percentages ending at 100, e.g. 10,25,50,100", s.Steps))
	}
	if s.Interval < time.Second {
		errs = append(errs, fmt.Errorf("--interval: %s is under 1s; give each analysis at least a second, e.g. 30s", s.Interval))
	}
	if s.MaxErrorRate < 0 || s.MaxErrorRate > 1 {
		errs = append(errs, fmt.Errorf("--max-error-rate: %g is not a rate from 0%% to 100%%; write it like 1%%", s.MaxErrorRate))
	}
	if s.MaxP99 <= 0 {
		errs = append(errs, fmt.Errorf("--max-p99: %s; give a positive duration, e.g. 500ms", s.MaxP99))
	}
	if s.Threshold < 1 {
		errs = append(errs, fmt.Errorf("--threshold: %d; roll back after at least 1 failed interval, e.g. 2", s.Threshold))
	}
	return errors.Join(errs...)
}

// CheckRoute reports why the shift cannot run on a route whose weights are
// now current: To must be another service than the one taking everything.
func CheckRoute(s model.ShiftSettings, current []model.Weight) error {
	others := 0
	for _, w := range current {
		if w.Service != s.To {
			others += w.Weight
		}
	}
	if others == 0 {
		return fmt.Errorf("--to: %s already takes all the traffic of %s; nothing to shift", s.To, s.Route)
	}
	return nil
}

// WeightsAt is the route's weights with To at pct percent: the other
// backends share 100-pct in proportion to their weights in from (largest
// remainder, so the sum is exactly 100). To is added when from lacks it.
func WeightsAt(from []model.Weight, to string, pct int) []model.Weight {
	total := 0
	for _, w := range from {
		if w.Service != to {
			total += max(w.Weight, 0)
		}
	}
	out := make([]model.Weight, 0, len(from)+1)
	rest := 100 - pct
	type share struct{ i, rem int }
	var shares []share
	given := 0
	hasTo := false
	for _, w := range from {
		if w.Service == to {
			hasTo = true
			out = append(out, model.Weight{Service: to, Weight: pct})
			continue
		}
		n := 0
		if total > 0 {
			n = rest * max(w.Weight, 0) / total
			shares = append(shares, share{len(out), rest * max(w.Weight, 0) % total})
		}
		given += n
		out = append(out, model.Weight{Service: w.Service, Weight: n})
	}
	slices.SortStableFunc(shares, func(a, b share) int { return b.rem - a.rem })
	for k := 0; given < rest && len(shares) > 0; k++ {
		out[shares[k%len(shares)].i].Weight++
		given++
	}
	if !hasTo {
		out = append(out, model.Weight{Service: to, Weight: pct})
	}
	return out
}

// PlannedStep is one step of the plan `weft shift --dry-run` prints.
type PlannedStep struct {
	Step    int
	Percent int
	Weights []model.Weight
	From    time.Time // when the step starts if every interval passes
	Until   time.Time
}

// Plan is the steps of s from start, when every interval passes: each
// step lasts one interval, and the shift is promoted at the end of the
// last.
func Plan(s model.ShiftSettings, from []model.Weight, start time.Time) []PlannedStep {
	out := make([]PlannedStep, len(s.Steps))
	for i, pct := range s.Steps {
		at := start.Add(time.Duration(i) * s.Interval)
		out[i] = PlannedStep{Step: i + 1, Percent: pct, Weights: WeightsAt(from, s.To, pct), From: at, Until: at.Add(s.Interval)}
	}
	return out
}

// FormatWeights writes weights as "a=90 b=10".
func FormatWeights(ws []model.Weight) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = fmt.Sprintf("%s=%d", w.Service, w.Weight)
	}
	return strings.Join(parts, " ")
}

// SameWeights says whether a and b give every service the same weight
// (order aside; a missing service counts as 0).
func SameWeights(a, b []model.Weight) bool {
	m := map[string]int{}
	for _, w := range a {
		m[w.Service] += w.Weight
	}
	for _, w := range b {
		m[w.Service] -= w.Weight
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}
