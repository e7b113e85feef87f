package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestRoutesByLongestPrefixAndPassesPathThrough(t *testing.T) {
	res := newFakeResolver()
	var routes []Route
	for _, r := range []struct{ prefix, service string }{
		{"/", "web"}, {"/api", "api"}, {"/api/products", "products"}, {"/static/", "static"},
	} {
		port, _ := instances(t, func(b *backend) http.Handler { b.name = r.service; return echoHandler(b) })
		res.set(r.service, ip(1))
		routes = append(routes, Route{Prefix: r.prefix, Service: r.service, Port: port})
	}
	gw := startGateway(t, Config{Routes: routes, Name: "api-gateway"}, res)

	for _, c := range []struct{ path, query, service string }{
		{"/api/products/7", "color=red&size=2", "products"},
		{"/api/products", "", "products"},
		{"/api/productsX", "", "api"},
		{"/api", "q=1", "api"},
		{"/api/orders/9", "", "api"},
		{"/apiary", "", "web"},
		{"/static/app.js", "", "static"},
		{"/", "", "web"},
		{"/some/where", "a=%2F", "web"},
	} {
		url := gw.url + c.path
		if c.query != "" {
			url += "?" + c.query
		}
		r := get(t, url)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: status %d, body %s", url, r.status, r.body)
		}
		e := r.echo(t)
		if e.Backend != c.service || e.Path != c.path || e.Query != c.query {
			t.Errorf("GET %s reached %s with path %q query %q; want %s with the path and query unchanged", url, e.Backend, e.Path, e.Query, c.service)
		}
	}

	r := get(t, gw.url+"/health")
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"status":"ok","service":"api-gateway"}` {
		t.Errorf("/health = %d %s", r.status, r.body)
	}
}

func TestUnknownRouteIs404AndNoInstanceIs503(t *testing.T) {
	res := newFakeResolver()
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/api/products", Service: "product-service", Port: 8000}}}, res)

	r := get(t, gw.url+"/x")
	if r.status != http.StatusNotFound || r.detail(t) != "no route for /x" {
		t.Errorf("GET /x = %d %s; want 404 no route for /x", r.status, r.body)
	}
	r = get(t, gw.url+"/api/products/1")
	if r.status != http.StatusServiceUnavailable || r.detail(t) != "no healthy instance of product-service" {
		t.Errorf("GET with no instance = %d %s; want 503 no healthy instance of product-service", r.status, r.body)
	}
}

func TestRetriesGETOnDeadInstanceAndEjectsIt(t *testing.T) {
	port, backends := instances(t, echoHandler, nil) // 127.0.0.2 refuses connections
	res := newFakeResolver()
	res.set("svc", ip(1), ip(2))
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "svc", Port: port, Retries: 1}}}, res)

	for i := 0; i < 6; i++ {
		if r := get(t, gw.url+"/item"); r.status != http.StatusOK || r.echo(t).Backend != "b1" {
			t.Fatalf("GET %d: %d %s; want 200 from the live instance", i, r.status, r.body)
		}
	}
	dead := fmt.Sprintf("127.0.0.2:%d", port)
	if n := counterValue(gw.metrics.retries.WithLabelValues("/")); n != 1 {
		t.Errorf("retries_total = %v; want 1 (the dead instance is ejected after its first refusal)", n)
	}
	if n := counterValue(gw.metrics.upstreamErrors.WithLabelValues("/", dead, kindDial)); n != 1 {
		t.Errorf("upstream_errors_total{kind=dial,upstream=%s} = %v; want 1", dead, n)
	}
	if n := backends[0].hits.Load(); n != 6 {
		t.Errorf("live instance got %d requests; want 6", n)
	}
}

func TestAllDialsFailedIs502(t *testing.T) {
	port, _ := instances(t, nil, nil)
	res := newFakeResolver()
	res.set("svc", ip(1), ip(2))
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "svc", Port: port, Retries: 3}}}, res)
	r := get(t, gw.url+"/")
	if r.status != http.StatusBadGateway {
		t.Fatalf("GET with every instance dead = %d %s; want 502", r.status, r.body)
	}
	if d := r.detail(t); d != "could not connect to svc (2 attempts)" {
		t.Errorf("detail %q", d)
	}
}

// crashHandler reads the request, then drops the connection without answering,
// like an instance that dies in the middle of a request.
func crashHandler(b *backend) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	})
}

func TestPOSTRetriedOnlyWhenNothingWasSent(t *testing.T) {
	t.Run("refused at dial", func(t *testing.T) {
		port, backends := instances(t, nil, echoHandler)
		res := newFakeResolver()
		res.set("svc", ip(1), ip(2))
		gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "svc", Port: port, Retries: 2}}}, res)
		body := bytes.Repeat([]byte("x"), 3000)
		for i := 0; i < 4; i++ {
			r := post(t, gw.url+"/orders", body)
			if r.status != http.StatusOK {
				t.Fatalf("POST %d: %d %s; want 200 after retrying on the live instance", i, r.status, r.body)
			}
			if e := r.echo(t); e.Method != http.MethodPost || e.BodyLen != len(body) {
				t.Fatalf("backend saw %s with %d body bytes; want POST with %d", e.Method, e.BodyLen, len(body))
			}
		}
		if n := counterValue(gw.metrics.retries.WithLabelValues("/")); n != 1 {
			t.Errorf("retries_total = %v; want 1", n)
		}
		if n := backends[1].hits.Load(); n != 4 {
			t.Errorf("live instance got %d POSTs; want 4", n)
		}
	})

	t.Run("instance dies mid-request", func(t *testing.T) {
		port, backends := instances(t, crashHandler, echoHandler)
		res := newFakeResolver()
		res.set("svc", ip(1), ip(2))
		gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "svc", Port: port, Retries: 2}}}, res)
		statuses := map[int]int{}
		for i := 0; i < 2; i++ {
			statuses[post(t, gw.url+"/orders", []byte(`{"qty":1}`)).status]++
		}
		if statuses[http.StatusOK] != 1 || statuses[http.StatusBadGateway] != 1 {
			t.Fatalf("two POSTs alternating over a crashing and a live instance: statuses %v; want one 200 and one 502", statuses)
		}
		if crashed, live := backends[0].hits.Load(), backends[1].hits.Load(); crashed != 1 || live != 1 {
			t.Errorf("crashing instance got %d, live got %d; want 1 and 1 (the broken POST is not sent again)", crashed, live)
		}
		if n := counterValue(gw.metrics.retries.WithLabelValues("/")); n != 0 {
			t.Errorf("retries_total = %v after POSTs; want 0", n)
		}
		crashed := backends[0].addr.String()
		if n := counterValue(gw.metrics.upstreamErrors.WithLabelValues("/", crashed, kindReset)); n != 1 {
			t.Errorf("upstream_errors_total{kind=reset,upstream=%s} = %v; want 1", crashed, n)
		}

		// The same failure before a response is retried for idempotent methods.
		for i := 0; i < 2; i++ {
			if r := get(t, gw.url+"/orders/1"); r.status != http.StatusOK || r.echo(t).Backend != "b2" {
				t.Fatalf("GET %d: %d %s; want 200 from the live instance", i, r.status, r.body)
			}
		}
		if n := counterValue(gw.metrics.retries.WithLabelValues("/")); n != 1 {
			t.Errorf("retries_total = %v after GETs; want 1", n)
		}
	})
}

func TestRouteTimeoutIs504(t *testing.T) {
	port, _ := instances(t, func(b *backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
	})
	res := newFakeResolver()
	res.set("slow", ip(1))
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "slow", Port: port, Timeout: 150 * time.Millisecond, Retries: 2}}}, res)
	start := time.Now()
	r := get(t, gw.url+"/")
	if r.status != http.StatusGatewayTimeout || r.detail(t) != "upstream timeout" {
		t.Fatalf("slow upstream = %d %s; want 504 upstream timeout", r.status, r.body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("504 took %s; want about the route's 150ms", took)
	}
	if n := counterValue(gw.metrics.upstreamErrors.WithLabelValues("/", fmt.Sprintf("127.0.0.1:%d", port), kindTimeout)); n != 1 {
		t.Errorf("upstream_errors_total{kind=timeout} = %v; want 1", n)
	}
}

func TestBodyLimit413(t *testing.T) {
	port, backends := instances(t, echoHandler)
	res := newFakeResolver()
	res.set("svc", ip(1))
	gw := startGateway(t, Config{MaxBodyBytes: 1024, Routes: []Route{{Prefix: "/", Service: "svc", Port: port}}}, res)

	send := func(size int, chunked bool) reply {
		req, err := http.NewRequest(http.MethodPost, gw.url+"/upload", bytes.NewReader(bytes.Repeat([]byte("y"), size)))
		if err != nil {
			t.Fatal(err)
		}
		if chunked {
			req.ContentLength = -1 // unknown length: sent chunked
			req.Body = io.NopCloser(req.Body)
		}
		return do(t, req)
	}
	for _, chunked := range []bool{false, true} {
		r := send(4096, chunked)
		if r.status != http.StatusRequestEntityTooLarge || r.detail(t) != "request body exceeds 1024 bytes" {
			t.Errorf("4096-byte body (chunked %v) = %d %s; want 413 request body exceeds 1024 bytes", chunked, r.status, r.body)
		}
	}
	if n := backends[0].hits.Load(); n != 0 {
		t.Errorf("backend got %d oversized requests; want none", n)
	}
	for _, chunked := range []bool{false, true} {
		r := send(1024, chunked)
		if r.status != http.StatusOK || r.echo(t).BodyLen != 1024 {
			t.Errorf("1024-byte body (chunked %v) = %d %s; want 200 with all bytes passed on", chunked, r.status, r.body)
		}
	}
}

func TestForwardedHeadersAndRequestID(t *testing.T) {
	port, _ := instances(t, echoHandler)
	res := newFakeResolver()
	res.set("svc", ip(1))
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "svc", Port: port}}}, res)

	req, _ := http.NewRequest(http.MethodGet, gw.url+"/who", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Request-ID", "client-id-1")
	r := do(t, req)
	e := r.echo(t)
	if e.XFF != "203.0.113.7, 127.0.0.1" || e.XFP != "http" {
		t.Errorf("backend saw X-Forwarded-For %q, X-Forwarded-Proto %q; want %q and http", e.XFF, e.XFP, "203.0.113.7, 127.0.0.1")
	}
	if got := r.header.Values("X-Request-ID"); e.RequestID != "client-id-1" || len(got) != 1 || got[0] != "client-id-1" {
		t.Errorf("client's request id: backend saw %q, response carries %q; want client-id-1 on both, once", e.RequestID, got)
	}

	req, _ = http.NewRequest(http.MethodGet, gw.url+"/who", nil)
	req.Header.Set("X-Request-ID", "not valid; <script>")
	r = do(t, req)
	e = r.echo(t)
	generated := r.header.Get("X-Request-ID")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(generated) || e.RequestID != generated {
		t.Errorf("invalid client id replaced by %q, backend saw %q; want one random 32-hex id on both", generated, e.RequestID)
	}
	if e.XFF != "127.0.0.1" {
		t.Errorf("X-Forwarded-For without a client chain = %q; want 127.0.0.1", e.XFF)
	}

	r = get(t, gw.url+"/nowhere-"+strings.Repeat("a", 3))
	if id := r.header.Get("X-Request-ID"); id == "" {
		t.Errorf("answers of the gateway itself carry no X-Request-ID")
	}
}

func TestFollowsEndpointChangesWithoutRestart(t *testing.T) {
	port, _ := instances(t, echoHandler, echoHandler)
	res := newFakeResolver()
	res.set("svc", ip(1))
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "svc", Port: port}}}, res)
	if b := get(t, gw.url+"/").echo(t).Backend; b != "b1" {
		t.Fatalf("first request went to %s; want b1", b)
	}
	res.set("svc", ip(2))
	for i := 0; i < 3; i++ {
		if b := get(t, gw.url+"/").echo(t).Backend; b != "b2" {
			t.Fatalf("after the change a request went to %s; want b2", b)
		}
	}
	res.set("svc", ip(1), ip(2))
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		seen[get(t, gw.url+"/").echo(t).Backend]++
	}
	if seen["b1"] != 5 || seen["b2"] != 5 {
		t.Errorf("round robin over two instances: %v; want 5 each", seen)
	}
}

func TestMetricsExposedWithLabels(t *testing.T) {
	port, _ := instances(t, echoHandler, nil)
	res := newFakeResolver()
	res.set("svc", ip(1), ip(2))
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/api", Service: "svc", Port: port, Retries: 1}}}, res)
	for i := 0; i < 3; i++ {
		get(t, gw.url+"/api/x")
	}
	get(t, gw.url+"/other")

	rec := httptest.NewRecorder()
	gw.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("metrics are not Prometheus text: %v", err)
	}
	live, dead := fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.2:%d", port)
	want := []struct {
		family string
		labels map[string]string
		value  float64
	}{
		{"weft_gateway_requests_total", map[string]string{"route": "/api", "upstream": live, "code": "200"}, 3},
		{"weft_gateway_requests_total", map[string]string{"route": "none", "upstream": "none", "code": "404"}, 1},
		{"weft_gateway_request_duration_seconds", map[string]string{"route": "/api", "upstream": live}, 3},
		{"weft_gateway_upstream_errors_total", map[string]string{"route": "/api", "upstream": dead, "kind": "dial"}, 1},
		{"weft_gateway_retries_total", map[string]string{"route": "/api"}, 1},
	}
	for _, w := range want {
		got, found := metricValue(families[w.family], w.labels)
		if !found || got != w.value {
			t.Errorf("%s%v = %v (found %v); want %v", w.family, w.labels, got, found, w.value)
		}
	}
}

// metricValue finds the sample with exactly these labels; for a histogram it
// returns the sample count.
func metricValue(family *dto.MetricFamily, labels map[string]string) (float64, bool) {
	if family == nil {
		return 0, false
	}
next:
	for _, m := range family.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestAccessLogIsOneJSONLinePerRequest(t *testing.T) {
	port, _ := instances(t, echoHandler, nil)
	res := newFakeResolver()
	res.set("svc", ip(2), ip(1)) // the dead one first: the first request needs two attempts
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/api", Service: "svc", Port: port, Retries: 1}}}, res)

	req, _ := http.NewRequest(http.MethodGet, gw.url+"/api/items?page=2", nil)
	req.Header.Set("X-Request-ID", "log-test-1")
	first := do(t, req)
	get(t, gw.url+"/missing")

	var lines []string
	eventually(t, 2*time.Second, "two access-log lines", func() bool { lines = logLines(gw.access); return len(lines) == 2 })
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatalf("access-log line %q is not JSON: %v", lines[0], err)
	}
	for _, field := range []string{"time", "request_id", "method", "path", "status", "bytes", "duration_ms", "route", "upstream", "attempts", "client"} {
		if _, ok := entry[field]; !ok {
			t.Errorf("access-log line lacks %q: %s", field, lines[0])
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(entry["time"])); err != nil {
		t.Errorf("time %v is not RFC 3339: %v", entry["time"], err)
	}
	checks := map[string]any{
		"request_id": "log-test-1", "method": "GET", "path": "/api/items", "status": 200.0,
		"bytes": float64(len(first.body)), "route": "/api", "upstream": fmt.Sprintf("127.0.0.1:%d", port),
		"attempts": 2.0, "client": "127.0.0.1",
	}
	for field, want := range checks {
		if entry[field] != want {
			t.Errorf("access log %s = %v; want %v", field, entry[field], want)
		}
	}
	var missing map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &missing); err != nil {
		t.Fatalf("second line %q is not JSON: %v", lines[1], err)
	}
	if missing["status"] != 404.0 || missing["route"] != "none" || missing["attempts"] != 0.0 {
		t.Errorf("unrouted request logged as %v", missing)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func TestUpgradedConnectionOutlivesRouteTimeout(t *testing.T) {
	port, _ := instances(t, func(b *backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "echo" {
				http.Error(w, "upgrade required", http.StatusUpgradeRequired)
				return
			}
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			rw.Flush()
			io.Copy(conn, rw) // echo until the client closes
		})
	})
	res := newFakeResolver()
	res.set("ws", ip(1))
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/ws", Service: "ws", Port: port, Timeout: 100 * time.Millisecond}}}, res)

	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %v, %v; want 101", resp, err)
	}
	for _, msg := range []string{"ping", "pong"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %q = %q, %v", msg, got, err)
		}
		time.Sleep(150 * time.Millisecond) // outlive the route's 100ms timeout on purpose
	}
}

// TestBodyLimit413ForABodyBeyondTheSocketBuffers: a client still sending a
// body much larger than the limit (and than the kernel's socket buffers)
// reads the 413, not a connection reset. Closing with the rest of the body
// unread would send an RST, and the client's kernel drops the answer it had
// not read yet; the gateway half-closes and reads on for a while instead.
func TestBodyLimit413ForABodyBeyondTheSocketBuffers(t *testing.T) {
	port, backends := instances(t, echoHandler)
	res := newFakeResolver()
	res.set("svc", ip(1))
	gw := startGateway(t, Config{MaxBodyBytes: 1024, Routes: []Route{{Prefix: "/", Service: "svc", Port: port}}}, res)
	big := bytes.Repeat([]byte("y"), 4<<20)
	for i := range 10 {
		req, err := http.NewRequest(http.MethodPost, gw.url+"/upload", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("4 MiB body, try %d: %v; want a 413", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("4 MiB body, try %d: %d; want 413", i, resp.StatusCode)
		}
	}
	if n := backends[0].hits.Load(); n != 0 {
		t.Errorf("backend got %d oversized requests; want none", n)
	}
}
