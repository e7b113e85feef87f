package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/syncbuf"
)

// fakeResolver answers from a table the test changes at will.
type fakeResolver struct {
	mu    sync.Mutex
	addrs map[string][]netip.Addr
}

func newFakeResolver() *fakeResolver { return &fakeResolver{addrs: map[string][]netip.Addr{}} }

func (f *fakeResolver) set(service string, addrs ...netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs[service] = addrs
}

func (f *fakeResolver) Endpoints(_ context.Context, service string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs[service], nil
}

// echo is what a test backend reports about the request it received.
type echo struct {
	Backend   string `json:"backend"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Query     string `json:"query"`
	XFF       string `json:"xff"`
	XFP       string `json:"xfp"`
	RequestID string `json:"request_id"`
	BodyLen   int    `json:"body_len"`
}

// backend is one test instance listening on ip:port.
type backend struct {
	name string
	addr netip.AddrPort
	hits atomic.Int64
	srv  *httptest.Server
}

func echoHandler(b *backend) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-ID", "from-backend")
		json.NewEncoder(w).Encode(echo{
			Backend: b.name, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			XFF: r.Header.Get("X-Forwarded-For"), XFP: r.Header.Get("X-Forwarded-Proto"),
			RequestID: r.Header.Get("X-Request-ID"), BodyLen: len(body),
		})
	})
}

// instances starts one backend per handler on 127.0.0.1, 127.0.0.2, ...
// all on the same port, the way instances of one service share a port on
// different IPs. A nil handler leaves that address dead (connection refused).
// It returns the port and the backends (nil for dead ones).
func instances(t *testing.T, handlers ...func(*backend) http.Handler) (int, []*backend) {
	t.Helper()
	for try := 0; try < 20; try++ {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		listeners := []net.Listener{first}
		ok := true
		for i := 1; i < len(handlers); i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", i+1, port))
			if err != nil {
				ok = false
				break
			}
			listeners = append(listeners, ln)
		}
		if !ok {
			for _, ln := range listeners {
				ln.Close()
			}
			continue
		}
		backends := make([]*backend, len(handlers))
		for i, h := range handlers {
			if h == nil {
				listeners[i].Close()
				continue
			}
			b := &backend{name: fmt.Sprintf("b%d", i+1), addr: netip.MustParseAddrPort(listeners[i].Addr().String())}
			b.srv = httptest.NewUnstartedServer(h(b))
			b.srv.Listener.Close()
			b.srv.Listener = listeners[i]
			b.srv.Start()
			t.Cleanup(b.srv.Close)
			backends[i] = b
		}
		return port, backends
	}
	t.Fatal("no port free on 127.0.0.1-127.0.0.N")
	return 0, nil
}

func ip(n int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, byte(n)}) }

// logLines is what the access log wrote to b, one entry per line.
func logLines(b *syncbuf.Buffer) []string {
	text := strings.TrimSpace(b.String())
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

type testGateway struct {
	*Gateway
	url    string
	access *syncbuf.Buffer
}

func startGateway(t *testing.T, cfg Config, res Resolver) *testGateway {
	t.Helper()
	access := &syncbuf.Buffer{}
	cfg.AccessLog = access
	g, err := New(cfg, res, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testGateway{Gateway: g, url: "http://" + serveProxy(t, g), access: access}
}

// serveProxy serves g's proxy (its server and listener with every limit) on a free
// loopback port until the test ends, and returns the address.
func serveProxy(t testing.TB, g *Gateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := g.server(nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(g.proxyListener(ln)) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutting the proxy down: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("proxy Serve: %v", err)
		}
		g.upstreams.closeIdle()
	})
	return ln.Addr().String()
}

// peekHeader is a request header for route.choose, by canonical name.
type peekHeader map[string]string

func (h peekHeader) Peek(key string) []byte {
	v, ok := h[http.CanonicalHeaderKey(key)]
	if !ok {
		return nil
	}
	return []byte(v)
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) echo(t *testing.T) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("backend reply %q (status %d) is not an echo: %v", r.body, r.status, err)
	}
	return e
}

func (r reply) detail(t *testing.T) string {
	t.Helper()
	var d struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("gateway reply %q (status %d) is not {\"detail\":...}: %v", r.body, r.status, err)
	}
	return d.Detail
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading reply of %s %s: %v", req.Method, req.URL, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

func get(t *testing.T, url string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func post(t *testing.T, url string, body []byte) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
