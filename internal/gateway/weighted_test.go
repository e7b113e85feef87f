package gateway

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func weightedGateway(t *testing.T, r Route) *Gateway {
	t.Helper()
	g, err := New(Config{Routes: []Route{r}}, newFakeResolver(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func TestWeightedChoice(t *testing.T) {
	cases := []struct {
		name    string
		weights []int
		n       int
		window  int // every window of this many requests is checked too
	}{
		{"90/10", []int{90, 10}, 1000, 100},
		{"50/50", []int{50, 50}, 1000, 20},
		{"1/99", []int{1, 99}, 1000, 200},
		{"three ways", []int{20, 30, 50}, 3000, 100},
		{"a zero weight gets nothing", []int{100, 0}, 500, 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var backends []Backend
			total := 0
			for i, w := range tc.weights {
				backends = append(backends, Backend{Service: string(rune('a' + i)), Port: 80, Weight: w})
				total += w
			}
			rt := weightedGateway(t, Route{Prefix: "/", Backends: backends}).routes[0]
			var seq []int
			for range tc.n {
				b := rt.choose(peekHeader{})
				seq = append(seq, int(b.Service[0]-'a'))
			}
			check := func(from, to int, slack float64) {
				counts := make([]int, len(tc.weights))
				for _, i := range seq[from:to] {
					counts[i]++
				}
				for i, w := range tc.weights {
					want := float64(to-from) * float64(w) / float64(total)
					if got := float64(counts[i]); got < want-slack || got > want+slack {
						t.Fatalf("requests %d-%d: backend %d (weight %d) got %d, want %.0f +- %.0f", from, to, i, w, counts[i], want, slack)
					}
				}
			}
			check(0, tc.n, float64(tc.n)*0.01+2)
			for from := 0; from+tc.window <= tc.n; from += tc.window {
				check(from, from+tc.window, float64(tc.window)*0.05+2)
			}
		})
	}
}

func TestHeaderMatchAndBackendMetrics(t *testing.T) {
	port, bs := instances(t, echoHandler, echoHandler)
	res := newFakeResolver()
	res.set("v1", ip(1))
	res.set("v2", ip(2))
	g := startGateway(t, Config{Routes: []Route{{
		Prefix:   "/api",
		Backends: []Backend{{Service: "v1", Port: port, Weight: 100}, {Service: "v2", Port: port, Weight: 0}},
		Match:    &HeaderMatch{Header: "X-Canary", Value: "always", Service: "v2", Port: port},
	}}}, res)
	for range 20 {
		if e := get(t, g.url+"/api/x").echo(t); e.Backend != bs[0].name {
			t.Fatalf("without the header a request went to %s; v2 has weight 0", e.Backend)
		}
	}
	for range 10 {
		req, _ := http.NewRequest(http.MethodGet, g.url+"/api/x", nil)
		req.Header.Set("x-canary", "always")
		if e := do(t, req).echo(t); e.Backend != bs[1].name {
			t.Fatalf("with x-canary: always a request went to %s, want v2 (%s)", e.Backend, bs[1].name)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, g.url+"/api/x", nil)
	req.Header.Set("x-canary", "sometimes")
	if e := do(t, req).echo(t); e.Backend != bs[0].name {
		t.Fatalf("with another header value a request went to %s, want v1", e.Backend)
	}
	rec := httptest.NewRecorder()
	g.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`weft_gateway_backend_requests_total{code="200",route="/api",service="v1"} 21`,
		`weft_gateway_backend_requests_total{code="200",route="/api",service="v2"} 10`,
		`weft_gateway_backend_request_duration_seconds_count{route="/api",service="v2"} 10`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRouteTargetsValidation(t *testing.T) {
	cases := []struct {
		name string
		r    Route
		want string
	}{
		{"both service and backends", Route{Prefix: "/", Service: "a", Port: 80, Backends: []Backend{{Service: "b", Port: 80, Weight: 1}}}, "both service and backends"},
		{"every weight zero", Route{Prefix: "/", Backends: []Backend{{Service: "a", Port: 80}, {Service: "b", Port: 80}}}, "every weight is 0"},
		{"negative weight", Route{Prefix: "/", Backends: []Backend{{Service: "a", Port: 80, Weight: -1}, {Service: "b", Port: 80, Weight: 1}}}, "backends[0].weight: -1 is negative"},
		{"backend without port", Route{Prefix: "/", Backends: []Backend{{Service: "a", Weight: 1}}}, "backends[0].port"},
		{"match without value", Route{Prefix: "/", Service: "a", Port: 80, Match: &HeaderMatch{Header: "x", Service: "a", Port: 80}}, "match: needs header, value and service"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Routes: []Route{tc.r}}, newFakeResolver(), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error with %q", err, tc.want)
			}
		})
	}
}
