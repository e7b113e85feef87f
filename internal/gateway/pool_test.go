package gateway

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeConn is an upstream connection that only records whether the pool
// closed it: the pool's rules never read or write a connection.
type fakeConn struct {
	net.Conn // nil; calling anything but Close fails the test with a panic
	closed   atomic.Bool
}

func (c *fakeConn) Close() error {
	c.closed.Store(true)
	return nil
}

// acceptingEndpoint is a loopback listener that accepts and holds every
// connection, for the pool's dials.
func acceptingEndpoint(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// putIdle puts one fake connection per age into p for endpoint, in order,
// each as if it had been idle that long, and returns them.
func putIdle(p *upstreamPool, endpoint netip.AddrPort, ages []time.Duration) ([]*upConn, []*fakeConn) {
	ucs := make([]*upConn, len(ages))
	fakes := make([]*fakeConn, len(ages))
	for i, age := range ages {
		fakes[i] = &fakeConn{}
		ucs[i] = &upConn{conn: fakes[i], endpoint: endpoint}
		p.put(ucs[i])
		ucs[i].idleSince = ucs[i].idleSince.Add(-age)
	}
	return ucs, fakes
}

func TestUpstreamPoolRules(t *testing.T) {
	const dialled = -1
	expired := upstreamIdleTimeout + time.Second
	fresh := func(n int) []time.Duration { return make([]time.Duration, n) }
	tests := []struct {
		name       string
		ages       []time.Duration // of the connections put, in the order put
		sweep      bool            // sweep after the puts
		gets       int
		wantGot    []int // index of the connection each get returns, or dialled
		wantClosed []int // indexes of the connections the pool closed
		wantIdle   int   // connections still idle at the end
	}{
		{name: "an empty pool dials", gets: 1, wantGot: []int{dialled}},
		{name: "most recently used first", ages: fresh(3), gets: 3, wantGot: []int{2, 1, 0}},
		{name: "one get takes one connection", ages: fresh(3), gets: 1, wantGot: []int{2}, wantIdle: 2},
		{name: "a connection idle past the timeout is closed, not reused",
			ages: []time.Duration{0, expired, 0}, gets: 3, wantGot: []int{2, 0, dialled}, wantClosed: []int{1}},
		{name: "a connection idle exactly the timeout has expired",
			ages: []time.Duration{upstreamIdleTimeout}, gets: 1, wantGot: []int{dialled}, wantClosed: []int{0}},
		{name: "at most maxIdlePerInstance idle; the extra is closed",
			ages: fresh(maxIdlePerInstance + 1), wantClosed: []int{maxIdlePerInstance}, wantIdle: maxIdlePerInstance},
		{name: "sweep closes the expired and keeps the rest in order",
			ages: []time.Duration{expired, 0, expired, time.Second}, sweep: true, gets: 2,
			wantGot: []int{3, 1}, wantClosed: []int{0, 2}},
		{name: "sweep of only expired connections empties the instance",
			ages: []time.Duration{expired, expired}, sweep: true, wantClosed: []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			endpoint := acceptingEndpoint(t)
			p := newUpstreamPool()
			defer p.closeIdle()
			ucs, fakes := putIdle(p, endpoint, tt.ages)
			if tt.sweep {
				p.sweep(time.Now())
			}
			var got []int
			for range tt.gets {
				uc, reused, err := p.get(context.Background(), endpoint, time.Now(), time.Now().Add(time.Minute))
				if err != nil {
					t.Fatalf("get: %v", err)
				}
				i := slices.Index(ucs, uc)
				if reused != (i >= 0) {
					t.Errorf("get returned reused=%v for connection %d", reused, i)
				}
				if i < 0 {
					uc.conn.Close()
				}
				got = append(got, i)
			}
			if !slices.Equal(got, tt.wantGot) {
				t.Errorf("gets returned connections %v; want %v (%d = dialled)", got, tt.wantGot, dialled)
			}
			var closed []int
			for i, f := range fakes {
				if f.closed.Load() {
					closed = append(closed, i)
				}
			}
			if !slices.Equal(closed, tt.wantClosed) {
				t.Errorf("closed connections %v; want %v", closed, tt.wantClosed)
			}
			p.mu.Lock()
			idle := len(p.idle[endpoint])
			_, listed := p.idle[endpoint]
			p.mu.Unlock()
			if idle != tt.wantIdle {
				t.Errorf("%d connections idle; want %d", idle, tt.wantIdle)
			}
			if tt.sweep && tt.wantIdle == 0 && tt.gets == 0 && listed {
				t.Errorf("sweep left an empty entry for %s", endpoint)
			}
		})
	}
}

func TestUpstreamPoolKeepsInstancesApart(t *testing.T) {
	a, b := acceptingEndpoint(t), acceptingEndpoint(t)
	p := newUpstreamPool()
	defer p.closeIdle()
	ucs, _ := putIdle(p, a, []time.Duration{0})
	uc, reused, err := p.get(context.Background(), b, time.Now(), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.conn.Close()
	if reused || uc == ucs[0] || uc.endpoint != b {
		t.Errorf("get(%s) returned %s's idle connection (reused=%v); want a new one to %s", b, a, reused, b)
	}
	if uc, reused, err := p.get(context.Background(), a, time.Now(), time.Now().Add(time.Minute)); err != nil || !reused || uc != ucs[0] {
		t.Errorf("get(%s) = reused %v, err %v; want its idle connection", a, reused, err)
	}
}

func TestUpstreamPoolCloseIdleClosesEverything(t *testing.T) {
	a, b := acceptingEndpoint(t), acceptingEndpoint(t)
	p := newUpstreamPool()
	_, fa := putIdle(p, a, []time.Duration{0, 0})
	_, fb := putIdle(p, b, []time.Duration{0})
	p.closeIdle()
	for i, f := range append(fa, fb...) {
		if !f.closed.Load() {
			t.Errorf("connection %d still open after closeIdle", i)
		}
	}
	if len(p.idle) != 0 {
		t.Errorf("%d instances still listed after closeIdle", len(p.idle))
	}
}

// stalledEndpoint is a loopback listener whose accept queue is full: the
// kernel drops further SYNs, so a connect to it waits until its caller
// gives up.
func stalledEndpoint(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	// A backlog of 0 holds one connection that is never accepted; fill it.
	filler, err := net.Dial("tcp", endpoint.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	return endpoint
}

func TestUpstreamPoolDialEndsWithTheContext(t *testing.T) {
	endpoint := stalledEndpoint(t)
	p := newUpstreamPool()
	tests := []struct {
		name   string
		cancel func(context.CancelFunc) // when the context ends
	}{
		{name: "already cancelled", cancel: func(cancel context.CancelFunc) { cancel() }},
		{name: "cancelled while connecting", cancel: func(cancel context.CancelFunc) {
			time.AfterFunc(20*time.Millisecond, cancel)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.cancel(cancel)
			// Without the context the dial would run to dialTimeout and
			// fail with a timeout, not with context.Canceled.
			uc, _, err := p.get(ctx, endpoint, time.Now(), time.Now().Add(time.Hour))
			if err == nil {
				uc.conn.Close()
				t.Fatalf("get to a stalled endpoint succeeded; want the dial cancelled")
			}
			var dialErr *dialError
			if !errors.Is(err, context.Canceled) || !errors.As(err, &dialErr) {
				t.Errorf("get = %v; want a dialError wrapping context.Canceled", err)
			}
		})
	}
}
