package health

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/weft-dev/weft/internal/spec"
)

// rawServer answers every connection's first request with answer, verbatim,
// and records each request it read; it returns its port. An empty answer
// hangs up without one.
func rawServer(t *testing.T, answer string) (int, func() []*http.Request) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reqs []*http.Request
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				mu.Lock()
				reqs = append(reqs, req)
				mu.Unlock()
				if answer == "" {
					return // hang up
				}
				_, _ = conn.Write([]byte(answer))
				// The prober closes its side after the response: reading
				// on ends at EOF rather than with a second request.
				if _, err := http.ReadRequest(br); err == nil {
					t.Errorf("a second request arrived on the probe's connection")
				}
			})
		}
	})
	return ln.Addr().(*net.TCPAddr).Port, func() []*http.Request {
		mu.Lock()
		defer mu.Unlock()
		return append([]*http.Request(nil), reqs...)
	}
}

func TestProbeHTTPAnswers(t *testing.T) {
	cases := []struct {
		name    string
		answer  string
		wantErr string // "" means healthy
	}{
		{"200 with a body", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ""},
		{"early hints, then 204", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", ""},
		{"100 continue, then 503", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", "status 503"},
		{"body until close", "HTTP/1.0 200 OK\r\n\r\n" + strings.Repeat("x", 100<<10), ""},
		{"not HTTP", "hello\r\n\r\n", "reading the response: malformed HTTP"},
		{"closed without an answer", "", "reading the response: unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port, requests := rawServer(t, tc.answer)
			err := Probe(t.Context(), spec.Health{HTTP: "/health?deep=1"}, loopback, port, nil)
			checkErr(t, err, tc.wantErr)
			reqs := requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodGet || r.RequestURI != "/health?deep=1" || r.Host != fmt.Sprintf("127.0.0.1:%d", port) || !r.Close {
				t.Errorf("request %s %s, Host %q, Connection close %v; want GET /health?deep=1 to 127.0.0.1:%d with Connection: close",
					r.Method, r.RequestURI, r.Host, r.Close, port)
			}
		})
	}
}

// Every probe opens its own connection and closes it after the response.
func TestProbeHTTPOneConnectionPerProbe(t *testing.T) {
	port, requests := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	for range 3 {
		checkErr(t, Probe(t.Context(), spec.Health{HTTP: "/ok"}, loopback, port, nil), "")
	}
	if n := len(requests()); n != 3 {
		t.Errorf("%d connections with a request for 3 probes, want 3", n)
	}
}
