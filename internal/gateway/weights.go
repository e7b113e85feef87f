package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// DefaultAdminListen is where the gateway serves its admin API: the live
// weights of its routes and its counters of each route backend. It listens
// on the loopback address of the gateway's own network namespace, so only
// a process that enters that namespace (the host's agent) reaches it; no
// other container can change the routing.
const DefaultAdminListen = "127.0.0.1:9190"

// Paths of the admin API.
const (
	AdminPathWeights = "/weights" // GET: every route's live weights; PUT: set them (WeightsRequest)
	AdminPathBackend = "/backend" // GET ?route=R&service=S: that backend's counters (BackendSample)
)

// WeightsRequest sets routes' weights: each named route takes its
// backends, every other route goes back to its config's.
type WeightsRequest struct {
	Routes map[string][]Backend `json:"routes"`
}

// BackendSample is the gateway's cumulative counters of one route backend
// (weft_gateway_backend_requests_total and _request_duration_seconds).
// Buckets[i] counts requests that took at most Bounds[i] seconds; one more,
// last, counts them all.
type BackendSample struct {
	Started time.Time     `json:"started"` // the gateway's start: counters begin at it
	Route   string        `json:"route"`
	Service string        `json:"service"`
	Codes   map[int]int64 `json:"codes"`
	Bounds  []float64     `json:"bounds"`
	Buckets []int64       `json:"buckets"`
}

// AdminListen is where a gateway of cfg serves its admin API: the default,
// or the next port up when the config's listeners take it.
func (cfg Config) AdminListen() string {
	cfg = cfg.withDefaults()
	taken := map[string]bool{}
	for _, a := range []string{cfg.Listen, cfg.MetricsListen} {
		if _, p, err := net.SplitHostPort(a); err == nil {
			taken[p] = true
		}
	}
	host, port, _ := net.SplitHostPort(DefaultAdminListen)
	n, _ := strconv.Atoi(port)
	for taken[strconv.Itoa(n)] {
		n++
	}
	return net.JoinHostPort(host, strconv.Itoa(n))
}

// backend is the route's backend for service, made on first use.
func (rt *route) backend(m *metrics, service string, port int) *routeBackend {
	if b, ok := rt.known[service]; ok && b.Port == port {
		return b
	}
	b := &routeBackend{Service: service, Port: port, metrics: m.forBackend(rt.Prefix, service)}
	rt.known[service] = b
	return b
}

func (rt *route) splitOf(m *metrics, targets []Backend) *split {
	sp := &split{}
	for _, t := range targets {
		sp.backends = append(sp.backends, rt.backend(m, t.Service, t.Port))
		sp.weights = append(sp.weights, max(t.Weight, 0))
		sp.total += max(t.Weight, 0)
	}
	return sp
}

// SetWeights makes the named routes split their requests between the given
// backends from the next request on; every route not named goes back to
// its config's weights. A backend keeps its metrics and round-robin
// position across changes. Nothing changes when any part is invalid.
func (g *Gateway) SetWeights(routes map[string][]Backend) error {
	g.weightsMu.Lock()
	defer g.weightsMu.Unlock()
	byPrefix := map[string]*route{}
	for _, rt := range g.routes {
		byPrefix[rt.Prefix] = rt
	}
	var errs []error
	for _, prefix := range slices.Sorted(maps.Keys(routes)) {
		if _, ok := byPrefix[prefix]; !ok {
			errs = append(errs, fmt.Errorf("route %q: the gateway has no such route", prefix))
			continue
		}
		errs = append(errs, Route{Prefix: prefix, Backends: routes[prefix]}.validateTargets(fmt.Sprintf("routes[%q]", prefix))...)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	before := g.Weights()
	for _, rt := range g.routes {
		targets, ok := routes[rt.Prefix]
		if !ok {
			targets = rt.targets()
		}
		rt.split.Store(rt.splitOf(g.metrics, targets))
	}
	if after := g.Weights(); !reflect.DeepEqual(before, after) {
		g.log.Info("weights set", "routes", after)
	}
	return nil
}

// Weights are every route's live weights.
func (g *Gateway) Weights() map[string][]Backend {
	out := map[string][]Backend{}
	for _, rt := range g.routes {
		sp := rt.split.Load()
		bs := make([]Backend, len(sp.backends))
		for i, b := range sp.backends {
			bs[i] = Backend{Service: b.Service, Port: b.Port, Weight: sp.weights[i]}
		}
		out[rt.Prefix] = bs
	}
	return out
}

// Backend reads the counters of route's backend service from the metrics.
func (g *Gateway) Backend(route, service string) (BackendSample, error) {
	s := BackendSample{Started: g.started, Route: route, Service: service, Codes: map[int]int64{}}
	families, err := g.metrics.registry.Gather()
	if err != nil {
		return s, fmt.Errorf("gathering metrics: %w", err)
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] != route || labels["service"] != service {
				continue
			}
			switch mf.GetName() {
			case "weft_gateway_backend_requests_total":
				code, err := strconv.Atoi(labels["code"])
				if err == nil {
					s.Codes[code] += int64(m.GetCounter().GetValue())
				}
			case "weft_gateway_backend_request_duration_seconds":
				s.Bounds, s.Buckets = histogramCounts(m.GetHistogram())
			}
		}
	}
	if s.Bounds == nil { // no request yet: an empty histogram
		s.Bounds, s.Buckets = slices.Clone(durationBuckets), make([]int64, len(durationBuckets)+1)
	}
	return s, nil
}

func histogramCounts(h *dto.Histogram) ([]float64, []int64) {
	var bounds []float64
	var counts []int64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
		counts = append(counts, int64(b.GetCumulativeCount()))
	}
	return bounds, append(counts, int64(h.GetSampleCount()))
}

// AdminHandler serves the admin API (see DefaultAdminListen).
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AdminPathWeights, func(w http.ResponseWriter, _ *http.Request) {
		writeAdminJSON(w, http.StatusOK, g.Weights())
	})
	mux.HandleFunc("PUT "+AdminPathWeights, func(w http.ResponseWriter, r *http.Request) {
		var req WeightsRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "decoding weights: " + err.Error()})
			return
		}
		if err := g.SetWeights(req.Routes); err != nil {
			writeAdminJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
			return
		}
		writeAdminJSON(w, http.StatusOK, g.Weights())
	})
	mux.HandleFunc("GET "+AdminPathBackend, func(w http.ResponseWriter, r *http.Request) {
		s, err := g.Backend(r.URL.Query().Get("route"), r.URL.Query().Get("service"))
		if err != nil {
			writeAdminJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeAdminJSON(w, http.StatusOK, s)
	})
	return mux
}

func writeAdminJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
