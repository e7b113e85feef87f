package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Limits protect the gateway from slow and greedy clients (slowloris and
// friends): every phase of a request has a deadline and every resource a
// cap. Zero fields take the defaults below.
type Limits struct {
	// HeaderTimeout bounds reading a request's headers.
	HeaderTimeout time.Duration `json:"header_timeout,omitempty"`
	// ReadTimeout bounds reading a request's body, from the end of its headers.
	ReadTimeout time.Duration `json:"read_timeout,omitempty"`
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	// MaxHeaderBytes caps a request's header block.
	MaxHeaderBytes int `json:"max_header_bytes,omitempty"`
	// MaxConnections caps the open client connections; one more is closed
	// at once (and counted) instead of waiting in the accept queue.
	MaxConnections int `json:"max_connections,omitempty"`
}

// Defaults of Limits. The write deadline of a response is not a setting: it
// is the longest a routed request may take (its timeout times its attempts)
// plus writeMargin.
const (
	DefaultHeaderTimeout  = 5 * time.Second
	DefaultReadTimeout    = 30 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxConnections = 4096
	writeMargin           = 10 * time.Second
)

func (l Limits) withDefaults() Limits {
	if l.HeaderTimeout == 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.ReadTimeout == 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	return l
}

func (l Limits) validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"header_timeout", l.HeaderTimeout}, {"read_timeout", l.ReadTimeout}, {"idle_timeout", l.IdleTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("limits.%s: %s is negative; use a positive duration or leave it out", d.name, d.v))
		}
	}
	if l.ReadTimeout > 0 && l.HeaderTimeout > l.ReadTimeout {
		errs = append(errs, fmt.Errorf("limits.header_timeout: %s is longer than read_timeout %s; shorten it", l.HeaderTimeout, l.ReadTimeout))
	}
	if l.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("limits.max_header_bytes: %d is negative; use a size in bytes such as 65536", l.MaxHeaderBytes))
	}
	if l.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("limits.max_connections: %d is negative; use a count such as 4096", l.MaxConnections))
	}
	return errors.Join(errs...)
}

// writeTimeout is how long a response may take to write: the slowest a
// route may be (every attempt timing out) plus a margin.
func writeTimeout(routes []Route) time.Duration {
	longest := DefaultRouteTimeout
	for _, r := range routes {
		longest = max(longest, r.Timeout*time.Duration(r.Retries+1))
	}
	return longest + writeMargin
}

// capListener accepts at most max connections at a time; over the cap it
// closes a new connection at once, so a flood never queues up behind the
// ones already served.
type capListener struct {
	net.Listener
	max     int
	refused func()

	mu   sync.Mutex
	open int
}

func newCapListener(ln net.Listener, max int, refused func()) *capListener {
	return &capListener{Listener: ln, max: max, refused: refused}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.open >= l.max {
			l.mu.Unlock()
			// Counted before the close, so whoever sees the close sees the count.
			if l.refused != nil {
				l.refused()
			}
			c.Close()
			continue
		}
		l.open++
		l.mu.Unlock()
		return &cappedConn{Conn: c, l: l, client: remoteIP(c.RemoteAddr())}, nil
	}
}

// Open is the number of connections accepted and not yet closed.
func (l *capListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

type cappedConn struct {
	net.Conn
	l       *capListener
	once    sync.Once // the listener's count, at the real close
	closing sync.Once
	linger  atomic.Bool // set when the request's body may still be arriving
	client  string      // the remote IP, formatted once for every request's X-Forwarded-For and log line
}

// Lingering close (nginx's lingering_close): a connection closed while the
// client is still sending a body the gateway did not read (a 413 before
// the body) is half-closed, and what still arrives is read and discarded
// for up to lingerTime or lingerBytes before the real close. Closing at
// once with unread data sends an RST, and the client's kernel then drops
// the answer the client had not read yet: it sees "connection reset"
// instead of the 413.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 64 << 20
)

// lingerOnClose marks the connection for a lingering close.
func (c *cappedConn) lingerOnClose() { c.linger.Store(true) }

func (c *cappedConn) Close() error {
	var err error
	c.closing.Do(func() {
		if c.linger.Load() {
			if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
				go c.drainAndClose()
				return
			}
		}
		err = c.closeNow()
	})
	return err
}

// drainAndClose reads and discards what the client still sends, until it
// closes or lingerTime or lingerBytes is reached, then closes.
func (c *cappedConn) drainAndClose() {
	_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.Conn, lingerBytes))
	_ = c.closeNow()
}

func (c *cappedConn) closeNow() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return err
}
