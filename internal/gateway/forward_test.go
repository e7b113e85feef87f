package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHopByHopHeadersStayOnTheirHop(t *testing.T) {
	seen := make(chan http.Header, 1)
	port, _ := instances(t, func(*backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- r.Header.Clone()
			w.Header().Set("Connection", "X-Resp-Secret")
			w.Header().Set("X-Resp-Secret", "1")
			w.Header().Set("Proxy-Authenticate", "Basic")
			w.Header().Set("X-Resp-Kept", "yes")
			w.Write([]byte("ok"))
		})
	})
	res := newFakeResolver()
	res.set("svc", ip(1))
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "svc", Port: port}}}, res)

	req, _ := http.NewRequest(http.MethodGet, gw.url+"/h", nil)
	req.Header.Set("Connection", "X-Secret, keep-alive")
	req.Header.Set("X-Secret", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic abc")
	req.Header.Set("Te", "trailers, deflate")
	req.Header.Set("Forwarded", "for=198.51.100.1")
	req.Header.Set("X-Forwarded-Host", "spoofed.example")
	req.Header.Set("X-Kept", "yes")
	req.Header.Set("User-Agent", "") // no User-Agent at all: Go's must not be added
	r := do(t, req)
	got := <-seen
	if r.status != http.StatusOK {
		t.Fatalf("status %d; want 200", r.status)
	}
	for _, name := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization", "Forwarded", "User-Agent"} {
		if v, ok := got[name]; ok {
			t.Errorf("backend received %s: %q; want it dropped", name, v)
		}
	}
	if got.Get("X-Kept") != "yes" || got.Get("Te") != "trailers" {
		t.Errorf("backend saw X-Kept %q, Te %q; want yes and trailers", got.Get("X-Kept"), got.Get("Te"))
	}
	if host := got.Get("X-Forwarded-Host"); host != strings.TrimPrefix(gw.url, "http://") {
		t.Errorf("X-Forwarded-Host = %q; want the host the client asked, %q", host, strings.TrimPrefix(gw.url, "http://"))
	}
	for _, name := range []string{"X-Resp-Secret", "Proxy-Authenticate"} {
		if v, ok := r.header[name]; ok {
			t.Errorf("client received %s: %q; want it dropped", name, v)
		}
	}
	if r.header.Get("X-Resp-Kept") != "yes" {
		t.Errorf("client lost X-Resp-Kept: %v", r.header)
	}
}

func TestStreamingResponseAndTrailersPassThrough(t *testing.T) {
	clientGotFirst := make(chan struct{})
	port, _ := instances(t, func(*backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			w.Write([]byte("first\n"))
			http.NewResponseController(w).Flush()
			// The rest waits for the client to have the first line, which it
			// only can if the gateway flushed it through.
			select {
			case <-clientGotFirst:
			case <-time.After(5 * time.Second):
			}
			w.Write([]byte("second\n"))
			w.Header().Set("X-Sum", "42")
		})
	})
	res := newFakeResolver()
	res.set("svc", ip(1))
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "svc", Port: port}}}, res)

	start := time.Now()
	resp, err := http.Get(gw.url + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	first, err := body.ReadString('\n')
	if err != nil || first != "first\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("first line arrived after %s: the gateway held a streaming response back", waited)
	}
	close(clientGotFirst)
	rest, err := io.ReadAll(body)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v; want second line", rest, err)
	}
	if sum := resp.Trailer.Get("X-Sum"); sum != "42" {
		t.Errorf("trailer X-Sum = %q; want 42 (trailers %v)", sum, resp.Trailer)
	}
}

func TestEarlyHintsPassThrough(t *testing.T) {
	port, _ := instances(t, func(*backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.Write([]byte("done"))
		})
	})
	res := newFakeResolver()
	res.set("svc", ip(1))
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "svc", Port: port}}}, res)

	var interim []int
	var links []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		interim = append(interim, code)
		links = append(links, h.Get("Link"))
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, gw.url+"/page", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	r := do(t, req)
	if len(interim) != 1 || interim[0] != http.StatusEarlyHints || links[0] != "</app.css>; rel=preload" {
		t.Errorf("interim responses %v with Link %q; want one 103 with the backend's Link", interim, links)
	}
	if r.status != http.StatusOK || string(r.body) != "done" {
		t.Errorf("final response %d %q; want 200 done", r.status, r.body)
	}
	if r.header.Get("Link") != "" || r.header.Get("X-Request-ID") == "" {
		t.Errorf("final header %v: want no Link left over from the 103 and an X-Request-ID", r.header)
	}
}

func TestGeneratedRequestIDsAreUniqueHex(t *testing.T) {
	newGateway := func() *Gateway {
		g, err := New(Config{AccessLog: io.Discard}, newFakeResolver(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	valid := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for _, g := range []*Gateway{newGateway(), newGateway()} {
		for i := 0; i < 1000; i++ {
			id := g.requestID(nil)
			if !valid.MatchString(id) {
				t.Fatalf("generated request id %q is not 32 hex digits", id)
			}
			if seen[id] {
				t.Fatalf("request id %q generated twice", id)
			}
			seen[id] = true
		}
	}
	if got := newGateway().requestID([]byte("client-1")); got != "client-1" {
		t.Errorf("a valid client id %q was replaced by %q", "client-1", got)
	}
}

func TestAccessLogEncodesLikeEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "/plain/path", `quote " and \ backslash`, "ctl \x00\x01\b\f\n\r\t\x1f end",
		"<script>&amp;</script>", "ünïcödé ✓ 日本", "bad utf8 \xff\xfe here", "sep \u2028 and \u2029",
		"truncated rune \xe2\x82",
	} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s; want %s", s, got, want)
		}
	}

	e := accessEntry{
		Time: time.Date(2026, 11, 22, 1, 2, 3, 456789000, time.FixedZone("x", 3600)), RequestID: "id-1",
		Method: "GET", Path: "/a\"b", Status: 502, Bytes: 1234, DurationMS: 12.345,
		Route: "/", Upstream: "10.10.0.5:8080", Attempts: 2, Client: "10.10.0.9",
	}
	var decoded map[string]any
	if err := json.Unmarshal(e.appendJSON(nil), &decoded); err != nil {
		t.Fatalf("entry %s is not JSON: %v", e.appendJSON(nil), err)
	}
	want := map[string]any{
		"time": "2026-11-22T00:02:03.456789Z", "request_id": "id-1", "method": "GET", "path": "/a\"b",
		"status": 502.0, "bytes": 1234.0, "duration_ms": 12.345, "route": "/", "upstream": "10.10.0.5:8080",
		"attempts": 2.0, "client": "10.10.0.9",
	}
	if len(decoded) != len(want) {
		t.Errorf("entry has fields %v; want %v", decoded, want)
	}
	for k, v := range want {
		if decoded[k] != v {
			t.Errorf("entry %s = %v; want %v", k, decoded[k], v)
		}
	}
}
