package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// runGateway serves cfg through Run (with its real server limits) on a free
// loopback port and returns the address; the gateway stops with the test.
func runGateway(t *testing.T, cfg Config, res Resolver) (*Gateway, string) {
	t.Helper()
	ports := make([]string, 2)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().String()
		ln.Close()
	}
	cfg.Listen, cfg.MetricsListen = ports[0], ports[1]
	cfg.AccessLog = io.Discard
	g, err := New(cfg, res, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway Run: %v", err)
		}
	})
	eventually(t, 5*time.Second, "the gateway to listen", func() bool {
		c, err := net.DialTimeout("tcp", cfg.Listen, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return g, cfg.Listen
}

// closedWithin reports whether the server ends conn (EOF or reset on read)
// within d, reading and discarding whatever it sends first.
func closedWithin(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

func TestSlowlorisLeavesNormalRequestsServed(t *testing.T) {
	port, _ := instances(t, echoHandler)
	res := newFakeResolver()
	res.set("api", ip(1))
	_, addr := runGateway(t, Config{
		Routes: []Route{{Prefix: "/api", Service: "api", Port: port}},
		Limits: Limits{HeaderTimeout: time.Second, ReadTimeout: 2 * time.Second},
	}, res)

	// 300 clients that send their headers one line every 300 ms, forever.
	const slow = 300
	conns := make([]net.Conn, 0, slow)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	for i := 0; i < slow; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("slow client %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /api/slow HTTP/1.1\r\nHost: gw\r\n")
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := fmt.Fprintf(c, "X-Slow-%d: x\r\n", n); err != nil {
						return
					}
				}
			}
		}()
	}

	// Normal requests are served meanwhile.
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 50; i++ {
		resp, err := client.Get("http://" + addr + "/api/normal")
		if err != nil {
			t.Fatalf("normal request %d during the slowloris: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("normal request %d: status %d", i, resp.StatusCode)
		}
	}

	// And every slow client is cut off after the header timeout instead of
	// holding its connection forever.
	var mu sync.Mutex
	open := 0
	var cwg sync.WaitGroup
	for _, c := range conns {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if !closedWithin(c, 5*time.Second) {
				mu.Lock()
				open++
				mu.Unlock()
			}
		}()
	}
	cwg.Wait()
	if open > 0 {
		t.Errorf("%d of %d slow clients still connected 5 s after a 1 s header timeout", open, slow)
	}
}

func TestSlowBodyIsCutAtTheReadTimeout(t *testing.T) {
	port, _ := instances(t, echoHandler)
	res := newFakeResolver()
	res.set("api", ip(1))
	_, addr := runGateway(t, Config{
		Routes: []Route{{Prefix: "/api", Service: "api", Port: port}},
		Limits: Limits{HeaderTimeout: 500 * time.Millisecond, ReadTimeout: time.Second},
	}, res)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	if !closedWithin(c, 6*time.Second) {
		t.Fatal("a body sent one byte at a time still holds its connection 6 s after a 1 s read timeout")
	}
}

func TestConnectionCapRefusesTheExtraAndRecovers(t *testing.T) {
	res := newFakeResolver()
	g, addr := runGateway(t, Config{Limits: Limits{MaxConnections: 5}}, res)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The server accepts in the background: wait until all five are counted.
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedWithin(extra, 3*time.Second) {
		t.Fatal("a connection over the cap was not closed")
	}
	var m dto.Metric
	if err := g.metrics.connectionsRefused.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n < 1 {
		t.Errorf("connections_refused_total = %v, want at least 1", n)
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	eventually(t, 3*time.Second, "a request once the held connections closed", func() bool {
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func TestOversizedHeadersAreRefused(t *testing.T) {
	res := newFakeResolver()
	_, addr := runGateway(t, Config{Limits: Limits{MaxHeaderBytes: 4096}}, res)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/health", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 32<<10))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d for 32 KiB of headers over a 4 KiB cap, want 431", resp.StatusCode)
	}
}

func TestLimitsValidation(t *testing.T) {
	bad := []Limits{
		{HeaderTimeout: -time.Second},
		{HeaderTimeout: 10 * time.Second, ReadTimeout: time.Second},
		{MaxHeaderBytes: -1},
		{MaxConnections: -5},
	}
	for _, l := range bad {
		if _, err := New(Config{Limits: l}, newFakeResolver(), nil); err == nil || !strings.Contains(err.Error(), "limits.") {
			t.Errorf("Limits %+v: err = %v, want one naming the limits field", l, err)
		}
	}
	if got := writeTimeout([]Route{{Timeout: 15 * time.Second, Retries: 2}}); got != 45*time.Second+writeMargin {
		t.Errorf("writeTimeout = %s, want every attempt's timeout plus the margin", got)
	}
}

func TestCapListenerCountsCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := newCapListener(ln, 2, nil)
	defer cl.Close()
	go func() {
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err == nil {
				defer c.Close()
			}
		}
		time.Sleep(time.Second)
	}()
	a, err := cl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b, err := cl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if cl.Open() != 2 {
		t.Fatalf("open = %d, want 2", cl.Open())
	}
	a.Close()
	a.Close() // a second Close must not count twice
	if cl.Open() != 1 {
		t.Errorf("open after one close (twice) = %d, want 1", cl.Open())
	}
	b.Close()
}

func TestCapListenerNotesTheClientIP(t *testing.T) {
	tests := []struct {
		name   string
		listen string
		dial   string
		want   string
	}{
		{name: "IPv4", listen: "127.0.0.1:0", dial: "127.0.0.1", want: "127.0.0.1"},
		{name: "IPv4 on a dual-stack socket is unmapped", listen: "[::]:0", dial: "127.0.0.1", want: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", tt.listen)
			if err != nil {
				t.Skipf("listening on %s: %v", tt.listen, err)
			}
			cl := newCapListener(ln, 1, nil)
			defer cl.Close()
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			c, err := net.Dial("tcp", net.JoinHostPort(tt.dial, port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			accepted, err := cl.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer accepted.Close()
			if got := accepted.(*cappedConn).client; got != tt.want {
				t.Errorf("client = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestRunForwardsTheClientIP goes through Run's listener, which notes the
// client's address once per connection for every request on it.
func TestRunForwardsTheClientIP(t *testing.T) {
	port, _ := instances(t, echoHandler)
	res := newFakeResolver()
	res.set("svc", ip(1))
	_, addr := runGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "svc", Port: port}}}, res)
	for i := range 2 { // two requests on one kept-alive connection
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/who", nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		if e := do(t, req).echo(t); e.XFF != "203.0.113.7, 127.0.0.1" {
			t.Errorf("request %d: backend saw X-Forwarded-For %q; want %q", i+1, e.XFF, "203.0.113.7, 127.0.0.1")
		}
	}
}

// TestSlowAnswerToABodylessRequestOutlivesTheHeaderTimeout: a request
// without a body keeps the header's read deadline while the instance
// answers; nothing reads the connection meanwhile, so an answer slower than
// header_timeout and read_timeout still arrives, and the connection serves
// the next request.
func TestSlowAnswerToABodylessRequestOutlivesTheHeaderTimeout(t *testing.T) {
	slow := func(b *backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(600 * time.Millisecond)
			echoHandler(b).ServeHTTP(w, r)
		})
	}
	port, _ := instances(t, slow)
	res := newFakeResolver()
	res.set("svc", ip(1))
	_, addr := runGateway(t, Config{
		Routes: []Route{{Prefix: "/", Service: "svc", Port: port}},
		Limits: Limits{HeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond},
	}, res)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 2 {
		fmt.Fprintf(c, "GET /slow HTTP/1.1\r\nHost: gw\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on one connection: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d; want 200", i+1, resp.StatusCode)
		}
	}
}
