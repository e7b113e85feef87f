package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// roundTrip sends one proxied request to an instance of its route's service,
// trying other instances when that is safe: any request whose connection
// could not be opened (nothing was sent), and idempotent requests whose
// connection broke before a response arrived. A request is never retried
// once a response has started. On success ex.resp holds the final
// response's header and the returned connection is positioned at its body.
func (g *Gateway) roundTrip(ctx *fasthttp.RequestCtx, ex *exchange) (*upConn, error) {
	rt, be := ex.route, ex.backend
	addrs, err := g.resolver.Endpoints(ctx, be.Service)
	if err != nil {
		g.log.Warn("resolving service", "service", be.Service, "err", err)
		return nil, &gatewayError{status: http.StatusServiceUnavailable, detail: "no healthy instance of " + be.Service, cause: err}
	}
	if len(addrs) == 0 {
		return nil, &gatewayError{status: http.StatusServiceUnavailable, detail: "no healthy instance of " + be.Service}
	}
	var room [4]netip.AddrPort // enough for most routes without a heap slice
	candidates := g.pick(rt, be, addrs, room[:0])
	replayable := isIdempotent(ex.method)
	var lastKind string
	var lastErr error
	for i, endpoint := range candidates {
		if i > 0 {
			rt.metrics.retries.Inc()
		}
		ex.attempts++
		ex.upstream = rt.metrics.upstream(endpoint)
		uc, err := g.attempt(ctx, ex, endpoint)
		if err == nil {
			g.outliers.forgive(endpoint)
			return uc, nil
		}
		kind := failureKind(err)
		g.metrics.upstreamErrors.WithLabelValues(rt.Prefix, ex.upstream.name, kind).Inc()
		lastKind, lastErr = kind, err
		switch kind {
		case kindDial:
			g.outliers.eject(endpoint, time.Now())
			continue
		case kindReset:
			if replayable {
				continue
			}
		}
		break
	}
	switch lastKind {
	case kindTimeout:
		return nil, &gatewayError{status: http.StatusGatewayTimeout, detail: "upstream timeout", cause: lastErr}
	case kindDial:
		return nil, &gatewayError{status: http.StatusBadGateway,
			detail: fmt.Sprintf("could not connect to %s (%d attempts)", be.Service, ex.attempts), cause: lastErr}
	default:
		return nil, &gatewayError{status: http.StatusBadGateway,
			detail: fmt.Sprintf("%s failed before responding", be.Service), cause: lastErr}
	}
}

// attempt sends the request to one instance and reads the final
// response's header, under the route's per-attempt timeout: a deadline on
// the connection, which keeps running while the response body is relayed;
// for a protocol upgrade (WebSocket) it covers the handshake only.
// A kept-alive connection the instance closed before answering (it may
// close an idle one at any time) is replaced by a new one, without
// counting as an attempt, when the request is idempotent or was not sent.
func (g *Gateway) attempt(ctx *fasthttp.RequestCtx, ex *exchange, endpoint netip.AddrPort) (*upConn, error) {
	now := time.Now()
	deadline := now.Add(ex.route.Timeout)
	for {
		uc, reused, err := g.upstreams.get(ctx, endpoint, now, deadline)
		if err != nil {
			return nil, err
		}
		uc.conn.SetDeadline(deadline)
		err = writeRequest(uc.bw, ctx, ex)
		written := err == nil
		if written {
			err = g.readHeader(ctx, ex, uc)
		}
		if err == nil {
			return uc, nil
		}
		uc.conn.Close()
		if reused && closedUnused(err) && (!written || isIdempotent(ex.method)) {
			continue
		}
		if isTimeout(err) {
			return nil, &attemptTimeout{err: err}
		}
		return nil, err
	}
}

// isTimeout reports an I/O deadline that expired; fasthttp reports one met
// while reading a header as its ErrTimeout.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, fasthttp.ErrTimeout) || errors.As(err, &netErr) && netErr.Timeout()
}

// closedUnused reports errors of a connection the peer had closed before
// the request reached it.
func closedUnused(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// readHeader reads the instance's response header into ex.resp, passing
// 103 Early Hints on to the client and skipping other interim responses.
func (g *Gateway) readHeader(ctx *fasthttp.RequestCtx, ex *exchange, uc *upConn) error {
	h := &ex.resp.Header
	for {
		if err := h.Read(uc.br); err != nil {
			return err
		}
		code := h.StatusCode()
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			return nil
		}
		if code != http.StatusEarlyHints {
			continue
		}
		out := &ctx.Response.Header
		for _, link := range h.PeekAll("Link") {
			out.AddBytesV("Link", link)
		}
		err := ctx.EarlyHints()
		out.Del("Link")
		if err != nil {
			return fmt.Errorf("passing on early hints: %w", err)
		}
	}
}

// pick chooses up to 1+Retries distinct instances of be in round-robin order,
// instances ejected for refusing connections last: when every instance is
// ejected they are tried anyway rather than failing without a try.
// picked is appended to and returned.
func (g *Gateway) pick(rt *route, be *routeBackend, addrs []netip.Addr, picked []netip.AddrPort) []netip.AddrPort {
	limit := min(1+rt.Retries, len(addrs))
	n := uint64(len(addrs))
	start := be.next.Add(1) - 1
	var now time.Time
	if g.outliers.any() {
		now = time.Now()
	}
	var ejected []netip.AddrPort
	for i := uint64(0); i < n && len(picked) < limit; i++ {
		endpoint := netip.AddrPortFrom(addrs[(start+i)%n], uint16(be.Port))
		if !now.IsZero() && g.outliers.ejected(endpoint, now) {
			ejected = append(ejected, endpoint)
			continue
		}
		picked = append(picked, endpoint)
	}
	for _, endpoint := range ejected {
		if len(picked) == limit {
			break
		}
		picked = append(picked, endpoint)
	}
	return picked
}

func isIdempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// Kinds of upstream failure, the "kind" label of weft_gateway_upstream_errors_total.
const (
	kindDial     = "dial"     // no connection: refused, unreachable, connect timeout
	kindTimeout  = "timeout"  // the route's timeout expired waiting for the instance
	kindReset    = "reset"    // the connection closed or was reset before a response
	kindProtocol = "protocol" // anything else, such as a malformed response
)

func failureKind(err error) string {
	var dialErr *dialError
	var timeout *attemptTimeout
	switch {
	case errors.As(err, &timeout):
		return kindTimeout
	case errors.As(err, &dialErr):
		return kindDial
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return kindReset
	}
	// net/http reports a connection the server closed while the request was
	// in flight without a wrapped cause.
	var netErr net.Error
	if errors.As(err, &netErr) && !netErr.Timeout() {
		return kindReset
	}
	return kindProtocol
}

// dialError marks a failure to open a connection: the request was not sent.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return fmt.Sprintf("connecting to %s: %v", e.addr, e.err) }
func (e *dialError) Unwrap() error { return e.err }

// attemptTimeout marks an attempt cut off by the route's timeout.
type attemptTimeout struct{ err error }

func (e *attemptTimeout) Error() string { return "upstream timeout: " + e.err.Error() }
func (e *attemptTimeout) Unwrap() error { return e.err }

// gatewayError is an answer the gateway gives itself instead of a backend's.
type gatewayError struct {
	status int
	detail string
	cause  error
}

func (e *gatewayError) Error() string {
	if e.cause == nil {
		return e.detail
	}
	return e.detail + ": " + e.cause.Error()
}
func (e *gatewayError) Unwrap() error { return e.cause }

// outliers remembers instances that refused connections and until when they
// are skipped (passive outlier ejection).
type outliers struct {
	period time.Duration
	mu     sync.RWMutex
	until  map[netip.AddrPort]time.Time
	// count mirrors len(until) so that requests skip the lock while no
	// instance is ejected, the usual case.
	count atomic.Int64
}

func newOutliers(period time.Duration) *outliers {
	return &outliers{period: period, until: make(map[netip.AddrPort]time.Time)}
}

func (o *outliers) eject(endpoint netip.AddrPort, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for ep, until := range o.until {
		if now.After(until) {
			delete(o.until, ep)
		}
	}
	o.until[endpoint] = now.Add(o.period)
	o.count.Store(int64(len(o.until)))
}

// any reports whether some instance may be ejected.
func (o *outliers) any() bool { return o.count.Load() > 0 }

func (o *outliers) ejected(endpoint netip.AddrPort, now time.Time) bool {
	o.mu.RLock()
	until, ok := o.until[endpoint]
	o.mu.RUnlock()
	return ok && now.Before(until)
}

// forgive readmits an instance that just answered.
func (o *outliers) forgive(endpoint netip.AddrPort) {
	if !o.any() {
		return
	}
	o.mu.RLock()
	_, ok := o.until[endpoint]
	o.mu.RUnlock()
	if !ok {
		return
	}
	o.mu.Lock()
	delete(o.until, endpoint)
	o.count.Store(int64(len(o.until)))
	o.mu.Unlock()
}

// requestID keeps the client's X-Request-ID when it is a sane token, else
// makes one of 32 hex digits: the gateway's random prefix and a counter.
func (g *Gateway) requestID(given []byte) string {
	if validRequestID(given) {
		return string(given)
	}
	const digits = "0123456789abcdef"
	var id [32]byte
	copy(id[:], g.idPrefix[:])
	seq := g.idSeq.Add(1)
	for i := len(id) - 1; i >= len(g.idPrefix); i-- {
		id[i] = digits[seq&0xf]
		seq >>= 4
	}
	return string(id[:])
}

func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

func writeDetail(ctx *fasthttp.RequestCtx, status int, detail string) {
	body, _ := json.Marshal(struct {
		Detail string `json:"detail"`
	}{detail})
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetStatusCode(status)
	ctx.SetBody(append(body, '\n'))
}

func healthBody(name string) []byte {
	body, _ := json.Marshal(struct {
		Status  string `json:"status"`
		Service string `json:"service"`
	}{"ok", name})
	return append(body, '\n')
}
