package shift

import (
	"fmt"
	"maps"
	"slices"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// FileWeights are a route's weights as the cluster file writes them: its
// backends, or its one service at 100.
func FileWeights(c *spec.Cluster, route string) ([]model.Weight, bool) {
	for _, r := range c.Routes {
		if r.Prefix != route {
			continue
		}
		if len(r.Backends) == 0 {
			return []model.Weight{{Service: r.Service, Weight: 100}}, true
		}
		out := make([]model.Weight, len(r.Backends))
		for i, b := range r.Backends {
			out[i] = model.Weight{Service: b.Service, Weight: b.Weight}
		}
		return out, true
	}
	return nil, false
}

// Current is a route's live weights: its record's when it has one, else
// the file's. fromFile says which.
func Current(c *spec.Cluster, route string, live map[string]model.RouteWeights) (ws []model.Weight, fromFile, ok bool) {
	if w, ok := live[route]; ok {
		return slices.Clone(w.Backends), false, true
	}
	ws, ok = FileWeights(c, route)
	return ws, true, ok
}

// CheckTarget reports why the shift cannot run on c: the route and the
// service must be in the file, and the service must not be the route's
// only one already.
func CheckTarget(s model.ShiftSettings, c *spec.Cluster, live map[string]model.RouteWeights) ([]model.Weight, bool, error) {
	cur, fromFile, ok := Current(c, s.Route, live)
	if !ok {
		var have []string
		for _, r := range c.Routes {
			have = append(have, r.Prefix)
		}
		return nil, false, fmt.Errorf("ROUTE: the cluster file has no route %q; name one of %v", s.Route, have)
	}
	svc, ok := c.ServiceByName(s.To)
	if !ok {
		return nil, false, fmt.Errorf("--to: the cluster file has no service %q; add it to services: (and weft up) first", s.To)
	}
	if svc.Port == 0 {
		return nil, false, fmt.Errorf("--to: service %s has no port; give it the port it serves HTTP on", s.To)
	}
	return cur, fromFile, CheckRoute(s, cur)
}

// Drift is what `weft up` of a file does to the routes' live weights.
type Drift struct {
	Drop  []string // routes whose record goes: the file's weights apply
	Notes []string // one line per route whose live weights differ from the file, or whose record goes
}

// Reconcile decides, for a file being applied, which live-weights records
// stay. The rule: a record stays while the file's weights of its route are
// those it was written over (the file did not change them), so `weft up` of
// an unchanged file never undoes a promoted shift, and says so. It goes
// when the file now says the same (the file caught up), when the file
// changed the route's weights otherwise (the file wins, unless a shift of
// the route is running), or when the route or a backend left the file.
func Reconcile(c *spec.Cluster, live map[string]model.RouteWeights, shifts map[string]model.Shift) Drift {
	var d Drift
	for _, route := range slices.Sorted(maps.Keys(live)) {
		w := live[route]
		file, ok := FileWeights(c, route)
		running := shifts[route].State != "" && !model.ShiftDone(shifts[route].State)
		drop := func(format string, a ...any) {
			d.Drop = append(d.Drop, route)
			d.Notes = append(d.Notes, fmt.Sprintf("route %s: ", route)+fmt.Sprintf(format, a...))
		}
		switch {
		case !ok:
			drop("gone from the file; its live weights (%s, by %s) are dropped", FormatWeights(w.Backends), w.By)
			continue
		case missingService(c, w.Backends) != "":
			drop("service %s is gone from the file; the live weights (by %s) are dropped, the file's apply: %s", missingService(c, w.Backends), w.By, FormatWeights(file))
			continue
		case SameWeights(file, w.Backends) && !running:
			drop("the file now has the live weights (%s): the file is their source again", FormatWeights(file))
			continue
		case SameWeights(file, w.File) || running:
			why := "the file's weights are unchanged"
			if running {
				why = "a shift of the route is running"
			}
			d.Notes = append(d.Notes, fmt.Sprintf("route %s: live weights %s (by %s) differ from the file's %s and stay, as %s; "+
				"write them into the file to make it match", route, FormatWeights(w.Backends), w.By, FormatWeights(file), why))
		default:
			drop("the file changed its weights (%s, was %s): the file's apply over the live weights %s of %s",
				FormatWeights(file), FormatWeights(w.File), FormatWeights(w.Backends), w.By)
		}
	}
	return d
}

func missingService(c *spec.Cluster, ws []model.Weight) string {
	for _, w := range ws {
		if _, ok := c.ServiceByName(w.Service); !ok {
			return w.Service
		}
	}
	return ""
}
