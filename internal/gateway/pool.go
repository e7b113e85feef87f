package gateway

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Tunables of the upstream connections.
const (
	// maxIdlePerInstance is how many idle keep-alive connections are kept
	// per instance: at least as many as the concurrent client connections
	// of a busy gateway, so a busy instance's connections are reused
	// instead of re-dialled.
	maxIdlePerInstance = 256
	// upstreamIdleTimeout is shorter than the idle timeout of common
	// servers, so the gateway drops idle connections before a backend
	// closes them and a request rarely lands on one being closed.
	upstreamIdleTimeout = 30 * time.Second
	// upstreamBufferSize is the read and write buffer of one connection.
	upstreamBufferSize = 4 << 10
)

// upConn is one HTTP/1.1 connection to an instance. The handler that holds
// it writes the request and reads the response itself: no goroutine per
// connection and no hand-off between goroutines per request.
type upConn struct {
	conn      net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	endpoint  netip.AddrPort
	idleSince time.Time
}

// upstreamPool keeps idle connections per instance, most recently used
// first.
type upstreamPool struct {
	dialer net.Dialer
	mu     sync.Mutex
	idle   map[netip.AddrPort][]*upConn
}

func newUpstreamPool() *upstreamPool {
	return &upstreamPool{
		dialer: net.Dialer{KeepAlive: 30 * time.Second},
		idle:   make(map[netip.AddrPort][]*upConn),
	}
}

// get returns the most recently used idle connection to endpoint, or dials
// one that must be open by deadline (at most dialTimeout after now, the
// caller's clock reading). reused says which. The dial ends early when ctx
// is done: the request's context, which the server cancels when it shuts
// down.
func (p *upstreamPool) get(ctx context.Context, endpoint netip.AddrPort, now, deadline time.Time) (uc *upConn, reused bool, err error) {
	p.mu.Lock()
	conns := p.idle[endpoint]
	for len(conns) > 0 {
		uc = conns[len(conns)-1]
		conns[len(conns)-1] = nil
		conns = conns[:len(conns)-1]
		if now.Sub(uc.idleSince) < upstreamIdleTimeout {
			break
		}
		uc.conn.Close()
		uc = nil
	}
	p.idle[endpoint] = conns
	p.mu.Unlock()
	if uc != nil {
		return uc, true, nil
	}
	dialDeadline := now.Add(dialTimeout)
	if deadline.Before(dialDeadline) {
		dialDeadline = deadline
	}
	d := p.dialer
	d.Deadline = dialDeadline
	conn, err := d.DialContext(ctx, "tcp", endpoint.String())
	if err != nil {
		return nil, false, &dialError{addr: endpoint.String(), err: err}
	}
	return &upConn{
		conn:     conn,
		br:       bufio.NewReaderSize(conn, upstreamBufferSize),
		bw:       bufio.NewWriterSize(conn, upstreamBufferSize),
		endpoint: endpoint,
	}, false, nil
}

// put keeps a connection whose last response was read to its end for the
// next request to its instance.
func (p *upstreamPool) put(uc *upConn) {
	uc.idleSince = time.Now()
	p.mu.Lock()
	conns := p.idle[uc.endpoint]
	if len(conns) >= maxIdlePerInstance {
		p.mu.Unlock()
		uc.conn.Close()
		return
	}
	p.idle[uc.endpoint] = append(conns, uc)
	p.mu.Unlock()
}

// closeIdle closes every idle connection.
func (p *upstreamPool) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for endpoint, conns := range p.idle {
		for _, uc := range conns {
			uc.conn.Close()
		}
		delete(p.idle, endpoint)
	}
}

// sweep closes the connections idle longer than upstreamIdleTimeout.
func (p *upstreamPool) sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for endpoint, conns := range p.idle {
		kept := conns[:0]
		for _, uc := range conns {
			if now.Sub(uc.idleSince) < upstreamIdleTimeout {
				kept = append(kept, uc)
			} else {
				uc.conn.Close()
			}
		}
		clear(conns[len(kept):])
		if len(kept) == 0 {
			delete(p.idle, endpoint)
		} else {
			p.idle[endpoint] = kept
		}
	}
}
