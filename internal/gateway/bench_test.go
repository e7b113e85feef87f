package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"
)

// cannedBackend is an HTTP/1.1 keep-alive server that answers every request
// with the same small response without parsing more than the header's end,
// so that a benchmark's CPU and allocations are the gateway's own and not a
// backend's living in the same process.
func cannedBackend(b *testing.B) netip.AddrPort {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := `{"hello":"world"}` + "\n"
	response := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	var conns sync.WaitGroup
	b.Cleanup(func() {
		ln.Close()
		conns.Wait()
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer conn.Close()
				serveCanned(conn, response)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// serveCanned answers each request header on conn (GET, no body) with response.
func serveCanned(conn net.Conn, response []byte) {
	r := bufio.NewReader(conn)
	for {
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break
			}
		}
		if _, err := conn.Write(response); err != nil {
			return
		}
	}
}

// discardWriter is the cheapest http.ResponseWriter: it keeps the header map
// between requests (cleared) and drops the body.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkProxyGET measures the gateway's work for one proxied GET through
// its handler (routing, request ID, upstream round trip over loopback,
// metrics, access log); the inbound server's parsing is not included.
func BenchmarkProxyGET(b *testing.B) {
	backendAddr := cannedBackend(b)
	res := newFakeResolver()
	res.set("web", backendAddr.Addr())
	g, err := New(Config{
		Routes:    []Route{{Prefix: "/", Service: "web", Port: int(backendAddr.Port())}},
		AccessLog: io.Discard,
	}, res, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.transport.CloseIdleConnections)
	b.Cleanup(g.access.flush)

	req, err := http.NewRequest(http.MethodGet, "http://gateway/api/items?page=2", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.RemoteAddr = "10.10.0.7:51234"
	req.Header.Set("User-Agent", "wrk")
	req.Header.Set("Accept", "*/*")
	handler := g.Handler()
	w := &discardWriter{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.header)
		w.status = 0
		handler.ServeHTTP(w, req)
		if w.status != http.StatusOK && w.status != 0 {
			b.Fatalf("status %d; want 200", w.status)
		}
	}
}

// BenchmarkProxyGETParallel is BenchmarkProxyGET from several goroutines at
// once, to show contention on the gateway's shared state (round robin,
// metrics, access log, outliers, resolver).
func BenchmarkProxyGETParallel(b *testing.B) {
	backendAddr := cannedBackend(b)
	res := newFakeResolver()
	res.set("web", backendAddr.Addr())
	g, err := New(Config{
		Routes:    []Route{{Prefix: "/", Service: "web", Port: int(backendAddr.Port())}},
		AccessLog: io.Discard,
	}, res, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.transport.CloseIdleConnections)
	b.Cleanup(g.access.flush)
	handler := g.Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, err := http.NewRequest(http.MethodGet, "http://gateway/api/items?page=2", nil)
		if err != nil {
			b.Error(err)
			return
		}
		req.RemoteAddr = "10.10.0.7:51234"
		w := &discardWriter{header: http.Header{}}
		for pb.Next() {
			clear(w.header)
			w.status = 0
			handler.ServeHTTP(w, req)
			if w.status != http.StatusOK && w.status != 0 {
				b.Errorf("status %d; want 200", w.status)
				return
			}
		}
	})
}

// BenchmarkDNSResolverCached is the resolver's cost per proxied request while
// its answer is fresh: it must stay a map lookup, never a query.
func BenchmarkDNSResolverCached(b *testing.B) {
	r := newDNSResolver("weft", time.Hour, []string{"127.0.0.1:1"})
	r.cache["web"] = cachedEndpoints{addrs: []netip.Addr{netip.MustParseAddr("10.10.0.5")}, fetched: time.Now()}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if addrs, err := r.Endpoints(ctx, "web"); err != nil || len(addrs) != 1 {
				b.Errorf("Endpoints = %v, %v; want the cached address", addrs, err)
				return
			}
		}
	})
}
