package failover

import (
	"bytes"
	"context"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/nsthread"
)

// request is one request of the client loop.
type request struct {
	start, end time.Time
	ok         bool
}

// client sends HTTP requests to one address at a steady rate, each on a new
// connection opened inside a lab namespace (the router's: where a client of
// the VPC enters), each bounded by a short timeout.
type client struct {
	ns      netns.NsHandle
	addr    string
	rate    int
	timeout time.Duration

	mu   sync.Mutex
	reqs []request
}

// run sends requests until ctx ends and waits for the last ones.
func (c *client) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Second / time.Duration(c.rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		wg.Go(func() {
			start := time.Now()
			ok := c.once(start)
			c.mu.Lock()
			c.reqs = append(c.reqs, request{start: start, end: time.Now(), ok: ok})
			c.mu.Unlock()
		})
	}
}

var okStatus = []byte("HTTP/1.1 200 ")

// once is one GET /health on a fresh connection.
func (c *client) once(start time.Time) bool {
	deadline := start.Add(c.timeout)
	var conn net.Conn
	err := nsthread.Do(c.ns, func() error {
		var err error
		d := net.Dialer{Deadline: deadline}
		conn, err = d.Dial("tcp4", c.addr)
		return err
	})
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("GET /health HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")); err != nil {
		return false
	}
	buf := make([]byte, len(okStatus))
	n := 0
	for n < len(buf) {
		m, err := conn.Read(buf[n:])
		n += m
		if err != nil {
			break
		}
	}
	return bytes.Equal(buf[:n], okStatus)
}

// since returns the requests started at or after t, in start order.
func (c *client) since(t time.Time) []request {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []request
	for _, r := range c.reqs {
		if !r.start.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// steady reports whether requests were sent during the last window and all
// of those finished succeeded.
func (c *client) steady(window time.Duration) bool {
	from := time.Now().Add(-window)
	rs := c.since(from)
	done := 0
	for _, r := range rs {
		if r.end.IsZero() {
			continue
		}
		if !r.ok {
			return false
		}
		done++
	}
	return done >= int(window.Seconds()*float64(c.rate))/2
}
