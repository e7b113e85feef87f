package gateway

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// FuzzServe: any bytes sent to the gateway's server get a well-formed
// answer (no panic, a real status, a request ID) or none, whatever the
// path, headers or body.
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
	srv := g.server(nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		// The request bytes, then the end of input: the server answers what
		// it has and returns, so no input waits for a timeout.
		conn := &bytesConn{in: bytes.NewReader(raw)}
		srv.ServeConn(conn)
		resp, err := http.ReadResponse(bufio.NewReader(&conn.out), nil)
		if err != nil {
			return // the server closed without an answer: no request in raw
		}
		resp.Body.Close()
		if resp.StatusCode < 100 || resp.StatusCode > 599 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Fatal("no X-Request-ID on the answer")
		}
	})
}

// bytesConn is a connection that reads a fixed input, then io.EOF, and
// keeps what is written to it.
type bytesConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *bytesConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *bytesConn) Close() error                { return nil }
func (c *bytesConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *bytesConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }
