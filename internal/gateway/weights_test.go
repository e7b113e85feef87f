package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func share(rt *route, service string, n int) float64 {
	hits := 0
	for range n {
		if rt.choose(peekHeader{}).Service == service {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

func adminDo(t *testing.T, h http.Handler, method, path string, body any) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			t.Fatal(err)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, &buf))
	return rec.Code, rec.Body.String()
}

func TestSetWeightsLive(t *testing.T) {
	g := weightedGateway(t, Route{Prefix: "/api", Backends: []Backend{{Service: "v1", Port: 80, Weight: 100}},
		Match: &HeaderMatch{Header: "x-canary", Value: "always", Service: "v2", Port: 80}})
	rt := g.routes[0]
	admin := g.AdminHandler()
	if s := share(rt, "v2", 1000); s != 0 {
		t.Fatalf("before: v2 got %.2f, want 0", s)
	}
	cases := []struct {
		name     string
		routes   map[string][]Backend
		code     int
		v2       float64 // share after
		errorHas string
	}{
		{"shift 25% to a backend only the match named", map[string][]Backend{"/api": {{"v1", 80, 75}, {"v2", 80, 25}}}, 200, 0.25, ""},
		{"all to v2", map[string][]Backend{"/api": {{"v1", 80, 0}, {"v2", 80, 100}}}, 200, 1, ""},
		{"unknown route: nothing changes", map[string][]Backend{"/nope": {{"v1", 80, 1}}}, 422, 1, "no such route"},
		{"all zero: nothing changes", map[string][]Backend{"/api": {{"v1", 80, 0}}}, 422, 1, "every weight is 0"},
		{"none named: back to the config", map[string][]Backend{}, 200, 0, ""},
	}
	for _, tc := range cases {
		code, body := adminDo(t, admin, http.MethodPut, AdminPathWeights, WeightsRequest{Routes: tc.routes})
		if code != tc.code || !strings.Contains(body, tc.errorHas) {
			t.Errorf("%s: PUT %d %s, want %d containing %q", tc.name, code, body, tc.code, tc.errorHas)
		}
		if s := share(rt, "v2", 2000); s < tc.v2-0.02 || s > tc.v2+0.02 {
			t.Errorf("%s: v2 got %.3f of the requests, want %.2f", tc.name, s, tc.v2)
		}
	}
	// The match keeps the same backend (one set of metrics per service).
	if rt.choose(peekHeader{"X-Canary": "always"}) != rt.known["v2"] {
		t.Errorf("the header match lost its backend across weight changes")
	}
	code, body := adminDo(t, admin, http.MethodGet, AdminPathWeights, nil)
	if code != 200 || !strings.Contains(body, `"service":"v1","port":80,"weight":100`) {
		t.Errorf("GET weights: %d %s", code, body)
	}
}

func TestBackendSample(t *testing.T) {
	g := weightedGateway(t, Route{Prefix: "/api", Backends: []Backend{{Service: "v1", Port: 80, Weight: 1}, {Service: "v2", Port: 80, Weight: 1}}})
	rt := g.routes[0]
	v2 := rt.known["v2"]
	for i := range 10 {
		code := 200
		if i%5 == 0 {
			code = 500
		}
		v2.metrics.observe(code, 300*time.Millisecond)
	}
	rt.known["v1"].metrics.observe(200, time.Millisecond)
	_, body := adminDo(t, g.AdminHandler(), http.MethodGet, AdminPathBackend+"?route=/api&service=v2", nil)
	var s BackendSample
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	if s.Codes[200] != 8 || s.Codes[500] != 2 || s.Started.IsZero() {
		t.Errorf("codes %v started %v, want 8 x 200 and 2 x 500", s.Codes, s.Started)
	}
	if len(s.Buckets) != len(s.Bounds)+1 || s.Buckets[len(s.Buckets)-1] != 10 {
		t.Fatalf("buckets %v bounds %v, want one more bucket than bounds, 10 in total", s.Buckets, s.Bounds)
	}
	for i, b := range s.Bounds {
		want := int64(0)
		if b >= 0.5 {
			want = 10
		}
		if s.Buckets[i] != want {
			t.Errorf("bucket <= %gs counts %d, want %d", b, s.Buckets[i], want)
		}
	}
	_, body = adminDo(t, g.AdminHandler(), http.MethodGet, AdminPathBackend+"?route=/api&service=none", nil)
	var empty BackendSample
	if err := json.Unmarshal([]byte(body), &empty); err != nil || len(empty.Codes) != 0 || len(empty.Buckets) != len(empty.Bounds)+1 {
		t.Errorf("an unused backend: %s (%v), want empty counters", body, err)
	}
}

func TestAdminListen(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "127.0.0.1:9190"},
		{Config{Listen: ":9190"}, "127.0.0.1:9191"},
		{Config{Listen: ":9190", MetricsListen: ":9191"}, "127.0.0.1:9192"},
	} {
		if got := tc.cfg.AdminListen(); got != tc.want {
			t.Errorf("%+v: AdminListen %s, want %s", tc.cfg, got, tc.want)
		}
	}
}
