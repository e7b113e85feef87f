package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// roundTrip sends one proxied request to an instance of its route's service,
// trying other instances when that is safe: any request whose connection
// could not be opened (nothing was sent), and idempotent requests whose
// connection broke before a response arrived. A request is never retried
// once a response has started.
func (g *Gateway) roundTrip(out *http.Request) (*http.Response, error) {
	ctx := out.Context()
	ex := exchangeFrom(ctx)
	rt := ex.route
	addrs, err := g.resolver.Endpoints(ctx, rt.Service)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		g.log.Warn("resolving service", "service", rt.Service, "err", err)
		return nil, &gatewayError{status: http.StatusServiceUnavailable, detail: "no healthy instance of " + rt.Service, cause: err}
	}
	if len(addrs) == 0 {
		return nil, &gatewayError{status: http.StatusServiceUnavailable, detail: "no healthy instance of " + rt.Service}
	}
	candidates := g.pick(rt, addrs)
	replayable := isIdempotent(out.Method)
	var lastKind string
	var lastErr error
	for i, endpoint := range candidates {
		if i > 0 {
			g.metrics.retries.WithLabelValues(rt.Prefix).Inc()
		}
		ex.attempts++
		ex.upstream = endpoint.String()
		resp, err := g.attempt(out, ex, endpoint)
		if err == nil {
			g.outliers.forgive(endpoint)
			return resp, nil
		}
		if ctx.Err() != nil {
			// The client went away; nothing to answer.
			return nil, ctx.Err()
		}
		kind := failureKind(err)
		g.metrics.upstreamErrors.WithLabelValues(rt.Prefix, ex.upstream, kind).Inc()
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
			detail: fmt.Sprintf("could not connect to %s (%d attempts)", rt.Service, ex.attempts), cause: lastErr}
	default:
		return nil, &gatewayError{status: http.StatusBadGateway,
			detail: fmt.Sprintf("%s failed before responding", rt.Service), cause: lastErr}
	}
}

// attempt sends the request to one instance under the route's per-attempt
// timeout, which keeps running while the response body is copied; for a
// protocol upgrade (WebSocket) it covers the handshake only.
func (g *Gateway) attempt(out *http.Request, ex *exchange, endpoint netip.AddrPort) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(out.Context())
	timer := time.AfterFunc(ex.route.Timeout, func() { cancel(errAttemptTimedOut) })
	finish := func() {
		timer.Stop()
		cancel(nil)
	}
	req := out.WithContext(ctx)
	target := *out.URL
	target.Host = endpoint.String()
	req.URL = &target
	if ex.body != nil {
		req.ContentLength = int64(len(ex.body))
		req.Body = io.NopCloser(bytes.NewReader(ex.body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(ex.body)), nil }
	}
	resp, err := g.transport.RoundTrip(req)
	if err != nil {
		timedOut := context.Cause(ctx) == errAttemptTimedOut
		finish()
		if timedOut {
			return nil, &attemptTimeout{err: err}
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The proxy needs the body's Write to relay the upgraded stream,
		// which lives as long as the client keeps it.
		timer.Stop()
		return resp, nil
	}
	resp.Body = &finishOnClose{ReadCloser: resp.Body, finish: finish}
	return resp, nil
}

// errAttemptTimedOut is the cause of an attempt's context cancelled by the
// route's timeout.
var errAttemptTimedOut = errors.New("route timeout expired")

// pick chooses up to 1+Retries distinct instances in round-robin order,
// instances ejected for refusing connections last: when every instance is
// ejected they are tried anyway rather than failing without a try.
func (g *Gateway) pick(rt *route, addrs []netip.Addr) []netip.AddrPort {
	limit := min(1+rt.Retries, len(addrs))
	n := uint64(len(addrs))
	start := rt.next.Add(1) - 1
	now := time.Now()
	picked := make([]netip.AddrPort, 0, limit)
	var ejected []netip.AddrPort
	for i := uint64(0); i < n && len(picked) < limit; i++ {
		endpoint := netip.AddrPortFrom(addrs[(start+i)%n], uint16(rt.Port))
		if g.outliers.ejected(endpoint, now) {
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

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// finishOnClose ends an attempt's timeout once its body is done.
type finishOnClose struct {
	io.ReadCloser
	finish func()
}

func (c *finishOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.finish()
	return err
}

// outliers remembers instances that refused connections and until when they
// are skipped (passive outlier ejection).
type outliers struct {
	period time.Duration
	mu     sync.RWMutex
	until  map[netip.AddrPort]time.Time
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
}

func (o *outliers) ejected(endpoint netip.AddrPort, now time.Time) bool {
	o.mu.RLock()
	until, ok := o.until[endpoint]
	o.mu.RUnlock()
	return ok && now.Before(until)
}

// forgive readmits an instance that just answered.
func (o *outliers) forgive(endpoint netip.AddrPort) {
	o.mu.RLock()
	_, ok := o.until[endpoint]
	o.mu.RUnlock()
	if !ok {
		return
	}
	o.mu.Lock()
	delete(o.until, endpoint)
	o.mu.Unlock()
}

// requestID keeps the client's X-Request-ID when it is a sane token, else
// makes a random one.
func requestID(given string) string {
	if validRequestID(given) {
		return given
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
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

func writeDetail(w http.ResponseWriter, status int, detail string) {
	body, _ := json.Marshal(struct {
		Detail string `json:"detail"`
	}{detail})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func healthBody(name string) []byte {
	body, _ := json.Marshal(struct {
		Status  string `json:"status"`
		Service string `json:"service"`
	}{"ok", name})
	return append(body, '\n')
}
