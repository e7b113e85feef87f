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

	"github.com/valyala/fasthttp"
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

// benchGateway is a gateway with one route to a canned backend.
func benchGateway(b *testing.B) *Gateway {
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
	b.Cleanup(g.upstreams.closeIdle)
	b.Cleanup(g.access.flush)
	return g
}

// benchRequest is a parsed client request as the server hands it over.
func benchRequest() *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.SetRequestURI("http://gateway/api/items?page=2")
	req.Header.Set("User-Agent", "wrk")
	req.Header.Set("Accept", "*/*")
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(10, 10, 0, 7), Port: 51234}, nil)
	return ctx
}

// BenchmarkProxyGET measures the gateway's work for one proxied GET through
// its handler (routing, request ID, upstream round trip over loopback,
// metrics, access log); the inbound server's parsing and writing are not
// included (BenchmarkProxyGETServed has them).
func BenchmarkProxyGET(b *testing.B) {
	g := benchGateway(b)
	ctx := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		g.serve(ctx)
		if code := ctx.Response.StatusCode(); code != http.StatusOK {
			b.Fatalf("status %d; want 200", code)
		}
	}
}

// BenchmarkProxyGETParallel is BenchmarkProxyGET from several goroutines at
// once, to show contention on the gateway's shared state (round robin,
// metrics, access log, outliers, resolver, upstream pool).
func BenchmarkProxyGETParallel(b *testing.B) {
	g := benchGateway(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := benchRequest()
		for pb.Next() {
			ctx.Response.Reset()
			g.serve(ctx)
			if code := ctx.Response.StatusCode(); code != http.StatusOK {
				b.Errorf("status %d; want 200", code)
				return
			}
		}
	})
}

// BenchmarkProxyGETServed is one proxied GET end to end over loopback: a
// keep-alive client connection, the gateway's server, the upstream round
// trip and the answer read back.
func BenchmarkProxyGETServed(b *testing.B) {
	g := benchGateway(b)
	addr := serveProxy(b, g)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	request := []byte("GET /api/items?page=2 HTTP/1.1\r\nHost: gateway\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReader(conn)
	var resp fasthttp.Response
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(request); err != nil {
			b.Fatal(err)
		}
		if err := resp.Read(br); err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode() != http.StatusOK {
			b.Fatalf("status %d; want 200", resp.StatusCode())
		}
	}
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
