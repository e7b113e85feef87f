package gateway

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzServe: any request net/http can parse gets a well-formed answer from
// the gateway (no panic, a real status), whatever its path, headers or body.
// Upstreams are absent, so routed requests end in the gateway's own errors.
func FuzzServe(f *testing.F) {
	for _, raw := range []string{
		"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n",
		"GET /api/v1/products/?q=1 HTTP/1.1\r\nHost: gw\r\nX-Request-ID: abc\r\n\r\n",
		"POST /api/v1/orders HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello",
		"PUT /api/../../etc/passwd HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 1.2.3.4, nonsense\r\n\r\n",
	} {
		f.Add([]byte(raw))
	}
	g, err := New(Config{
		Routes:       []Route{{Prefix: "/api", Service: "api", Port: 8000, Retries: 1}},
		MaxBodyBytes: 1024,
		AccessLog:    io.Discard,
	}, newFakeResolver(), slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	h := g.Handler()
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		req.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 100 || rec.Code > 599 {
			t.Fatalf("status %d", rec.Code)
		}
		if rec.Header().Get("X-Request-Id") == "" {
			t.Fatal("no X-Request-ID on the answer")
		}
	})
}
