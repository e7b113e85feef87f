// Package gateway is weft's L7 HTTP reverse proxy. It runs as a container,
// routes requests by longest path prefix to the healthy instances of a
// service (found through a Resolver, by default the cluster DNS), balances
// round robin, ejects instances that refuse connections for a few seconds,
// retries where it is safe, and reports Prometheus metrics and one JSON
// access-log line per request.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
)

// Tunables that are not part of the cluster file.
const (
	// ejectFor is how long an instance that refused a connection is skipped.
	ejectFor = 5 * time.Second
	// dialTimeout bounds one connection attempt; instances live on the same
	// overlay, so a slow connect means a dead host, not a slow network.
	dialTimeout = 2 * time.Second
	// shutdownGrace is how long Run waits for in-flight requests on shutdown.
	shutdownGrace = 10 * time.Second
	// unmatchedLabel and healthLabel are the route label of requests that
	// match no route and of the gateway's own /health; neither starts with
	// "/" so they never collide with a route prefix.
	unmatchedLabel = "none"
	healthLabel    = "health"
	noUpstream     = "none"
)

// Gateway is the proxy. Build it with New; it is safe for concurrent use.
type Gateway struct {
	cfg       Config
	routes    []*route   // longest prefix first
	weightsMu sync.Mutex // serialises SetWeights
	started   time.Time  // when New made it: its counters begin here
	resolver  Resolver
	log       *slog.Logger
	access    *accessLog
	metrics   *metrics
	outliers  *outliers
	upstreams *upstreamPool
	exchanges sync.Pool // *exchange
	health    []byte

	unmatchedMetrics *routeMetrics
	healthMetrics    *routeMetrics

	// Generated request IDs are a random per-gateway prefix and a counter:
	// unique without a random read per request.
	idPrefix [16]byte // hex
	idSeq    atomic.Uint64
}

// route is a configured Route with its backends and metrics.
type route struct {
	Route
	split   atomic.Pointer[split] // the live weights: the config's, or those set by SetWeights
	seq     atomic.Uint64         // numbers the route's requests, for the weighted choice
	match   *routeBackend         // the header match's backend; nil without one
	metrics *routeMetrics
	// known is every backend the route has had, by service, so a backend
	// keeps its round-robin position and metrics across weight changes.
	// Guarded by the gateway's weightsMu.
	known map[string]*routeBackend
}

// split is one set of weighted backends of a route, swapped whole.
type split struct {
	backends []*routeBackend
	weights  []int // of each backend, never negative
	total    int   // sum of the weights
}

// routeBackend is one service a route sends to, with its own round-robin
// position over the service's instances.
type routeBackend struct {
	Service string
	Port    int
	next    atomic.Uint64
	metrics *backendMetrics
}

// choose is the backend of one request: the header match's when the
// request carries it, else a weighted choice. The choice follows a
// low-discrepancy sequence over the route's requests (the golden-ratio
// Weyl sequence), so every window of requests is split close to the
// weights, not in long runs.
func (r *route) choose(h headerPeeker) *routeBackend {
	if r.match != nil {
		if v := h.Peek(r.Match.Header); v != nil && string(v) == r.Match.Value {
			return r.match
		}
	}
	sp := r.split.Load()
	if len(sp.backends) == 1 {
		return sp.backends[0]
	}
	n := r.seq.Add(1)
	u := float64((n*0x9E3779B97F4A7C15)>>11) / (1 << 53) // in [0, 1)
	pick := int(u * float64(sp.total))
	for i, w := range sp.weights {
		if pick < w {
			return sp.backends[i]
		}
		pick -= w
	}
	return sp.backends[len(sp.backends)-1]
}

// headerPeeker is a request header: fasthttp's, or a test's.
type headerPeeker interface {
	// Peek returns the first value of the header key, nil when absent.
	Peek(key string) []byte
}

func (g *Gateway) newRoute(r Route) *route {
	rt := &route{Route: r, metrics: g.metrics.forRoute(r.Prefix), known: map[string]*routeBackend{}}
	rt.split.Store(rt.splitOf(g.metrics, r.targets()))
	if m := r.Match; m != nil {
		rt.match = rt.backend(g.metrics, m.Service, m.Port) // one round-robin position and one set of metrics per service
	}
	return rt
}

// matches reports whether the request path falls under the route: equal to
// the prefix, or continuing it with "/" (so /api does not catch /apiary).
func (r *route) matches(path string) bool {
	if !strings.HasPrefix(path, r.Prefix) {
		return false
	}
	if len(path) == len(r.Prefix) || strings.HasSuffix(r.Prefix, "/") {
		return true
	}
	return path[len(r.Prefix)] == '/'
}

// New checks cfg, applies defaults and builds the gateway. log receives
// diagnostics; the access log goes to cfg.AccessLog.
func New(cfg Config, res Resolver, log *slog.Logger) (*Gateway, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	if res == nil {
		return nil, errors.New("gateway: no resolver; pass NewDNSResolver(domain, time.Second)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	accessOut := cfg.AccessLog
	if accessOut == nil {
		accessOut = os.Stdout
	}
	g := &Gateway{
		cfg:       cfg,
		resolver:  res,
		log:       log,
		access:    newAccessLog(accessOut),
		metrics:   newMetrics(),
		outliers:  newOutliers(ejectFor),
		upstreams: newUpstreamPool(),
		health:    healthBody(cfg.Name),
		started:   time.Now(),
		exchanges: sync.Pool{New: func() any { return new(exchange) }},
	}
	if err := g.access.setSampling(cfg.AccessLogSampling); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	var seed [8]byte
	rand.Read(seed[:])
	hex.Encode(g.idPrefix[:], seed[:])
	g.unmatchedMetrics = g.metrics.forRoute(unmatchedLabel)
	g.healthMetrics = g.metrics.forRoute(healthLabel)
	for _, r := range cfg.Routes {
		g.routes = append(g.routes, g.newRoute(r))
	}
	slices.SortStableFunc(g.routes, func(a, b *route) int { return len(b.Prefix) - len(a.Prefix) })
	return g, nil
}

// server is the HTTP server of the proxy, with every limit of cfg.Limits.
// It is fasthttp's: a server built for proxies, which reuses its request
// and response objects and buffers instead of allocating them per request
// (net/http's server and transport were about half the gateway's CPU).
// proxyListener is what the proxy's server accepts from: ln with the cap on
// open connections, whose connections close with a linger when a request
// body is left unread (limits.go).
func (g *Gateway) proxyListener(ln net.Listener) net.Listener {
	return newCapListener(ln, g.cfg.Limits.MaxConnections, g.metrics.connectionsRefused.Inc)
}

func (g *Gateway) server(errLog *log.Logger) *fasthttp.Server {
	lim := g.cfg.Limits
	srv := &fasthttp.Server{
		Handler:      g.serve,
		ErrorHandler: g.serveError,
		// The header must arrive within HeaderTimeout, the body within
		// ReadTimeout after it. A request without a body reads nothing
		// more, so its deadline is not moved (one timer update less per
		// request): the next read is the next request's, under IdleTimeout.
		ReadTimeout: lim.HeaderTimeout,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if h.ContentLength() == 0 {
				return fasthttp.RequestConfig{}
			}
			return fasthttp.RequestConfig{ReadTimeout: lim.ReadTimeout}
		},
		WriteTimeout: writeTimeout(g.cfg.Routes),
		IdleTimeout:  lim.IdleTimeout,
		// The header block must fit in the read buffer.
		ReadBufferSize:     lim.MaxHeaderBytes,
		MaxRequestBodySize: int(min(g.cfg.MaxBodyBytes, math.MaxInt32)),
		// The answer's headers are the backend's: add no Server or
		// Content-Type of the gateway's own.
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
	}
	if errLog != nil {
		srv.Logger = errLog
	}
	return srv
}

// Run serves cfg.Listen and the metrics on cfg.MetricsListen (at /metrics)
// until ctx is done, then shuts down gracefully.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.access.flush()
	defer g.upstreams.closeIdle()
	errLog := slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)
	mux := http.NewServeMux()
	mux.Handle("/metrics", g.MetricsHandler())
	lim := g.cfg.Limits
	proxy := g.server(errLog)
	servers := []*http.Server{
		{Addr: g.cfg.MetricsListen, Handler: mux, ReadHeaderTimeout: lim.HeaderTimeout, ReadTimeout: lim.ReadTimeout,
			WriteTimeout: lim.ReadTimeout, IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: lim.MaxHeaderBytes, ErrorLog: errLog},
		{Addr: g.cfg.AdminListen(), Handler: g.AdminHandler(), ReadHeaderTimeout: lim.HeaderTimeout, ReadTimeout: lim.ReadTimeout,
			WriteTimeout: lim.ReadTimeout, IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: lim.MaxHeaderBytes, ErrorLog: errLog},
	}
	addrs := []string{g.cfg.Listen, g.cfg.MetricsListen, g.cfg.AdminListen()}
	listeners := make([]net.Listener, 0, len(addrs))
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("gateway listening on %s: %w", addr, err)
		}
		if addr == g.cfg.Listen {
			ln = g.proxyListener(ln)
		}
		listeners = append(listeners, ln)
	}
	g.log.Info("gateway serving", "listen", g.cfg.Listen, "metrics", g.cfg.MetricsListen, "admin", g.cfg.AdminListen(), "routes", len(g.routes))

	group, groupCtx := errgroup.WithContext(ctx)
	group.Go(func() error {
		if err := proxy.Serve(listeners[0]); err != nil {
			return fmt.Errorf("gateway serving %s: %w", g.cfg.Listen, err)
		}
		return nil
	})
	for i, srv := range servers {
		group.Go(func() error {
			if err := srv.Serve(listeners[i+1]); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("gateway serving %s: %w", srv.Addr, err)
			}
			return nil
		})
	}
	group.Go(func() error {
		sweep := time.NewTicker(upstreamIdleTimeout / 2)
		defer sweep.Stop()
		for {
			select {
			case <-groupCtx.Done():
				return nil
			case now := <-sweep.C:
				g.upstreams.sweep(now)
			}
		}
	})
	group.Go(func() error {
		<-groupCtx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		var errs []error
		if err := proxy.ShutdownWithContext(shutdownCtx); err != nil {
			errs = append(errs, fmt.Errorf("shutting down %s: %w", g.cfg.Listen, err))
		}
		for _, srv := range servers {
			if err := srv.Shutdown(shutdownCtx); err != nil {
				errs = append(errs, fmt.Errorf("shutting down %s: %w", srv.Addr, err))
				srv.Close()
			}
		}
		return errors.Join(errs...)
	})
	return group.Wait()
}

func (g *Gateway) match(path string) *route {
	for _, r := range g.routes {
		if r.matches(path) {
			return r
		}
	}
	return nil
}

// exchange is what the gateway learns about one request on its way through
// the proxy. It outlives the handler when the response streams or the
// connection is upgraded, and is reused for another request after record.
type exchange struct {
	start     time.Time
	requestID string
	method    string
	path      string
	client    string
	route     *route
	backend   *routeBackend // the route's backend chosen for this request
	attempts  int
	upstream  *upstreamMetrics // the last instance tried; nil before any
	status    int
	bytes     int64
	head      bool // a HEAD request: the response has no body
	upgrade   bool // the request asks for a protocol upgrade

	resp   fasthttp.Response // the instance's response
	stream bodyStream        // relays resp's body when it streams
}

func (g *Gateway) newExchange(ctx *fasthttp.RequestCtx) *exchange {
	ex := g.exchanges.Get().(*exchange)
	ex.start = time.Now()
	ex.requestID = g.requestID(ctx.Request.Header.Peek("X-Request-Id"))
	ex.method = methodString(ctx.Method())
	ex.path = string(ctx.Path())
	ex.client = clientIP(ctx)
	ex.head = ctx.IsHead()
	return ex
}

// release returns ex for another request.
func (g *Gateway) release(ex *exchange) {
	ex.resp.Reset()
	ex.route, ex.backend, ex.upstream = nil, nil, nil
	ex.attempts, ex.status, ex.bytes = 0, 0, 0
	ex.upgrade = false
	ex.stream = bodyStream{}
	g.exchanges.Put(ex)
}

func (g *Gateway) serve(ctx *fasthttp.RequestCtx) {
	ex := g.newExchange(ctx)
	if g.handle(ctx, ex) {
		return // the response streams or the connection is upgraded: recorded at its end
	}
	if ex.status == 0 {
		ex.status = ctx.Response.StatusCode()
	}
	ex.bytes = int64(len(ctx.Response.Body()))
	g.finish(ex)
}

// handle answers the request. It returns true when the answer goes on after
// it returns (a streamed body, an upgraded connection), whose end records
// the exchange.
func (g *Gateway) handle(ctx *fasthttp.RequestCtx, ex *exchange) (later bool) {
	ctx.Response.Header.Set("X-Request-Id", ex.requestID)
	if ex.path == "/health" {
		ctx.Response.Header.SetContentType("application/json")
		ctx.SetBody(g.health)
		return false
	}
	ex.route = g.match(ex.path)
	if ex.route == nil {
		writeDetail(ctx, http.StatusNotFound, "no route for "+ex.path)
		return false
	}
	ex.backend = ex.route.choose(&ctx.Request.Header)
	ex.upgrade = len(ctx.Request.Header.Peek("Upgrade")) > 0
	return g.forward(ctx, ex)
}

// serveError answers a request the server could not read: a body over the
// limit, a header block over its cap, a timeout or a malformed request.
func (g *Gateway) serveError(ctx *fasthttp.RequestCtx, err error) {
	ex := g.newExchange(ctx)
	ctx.Response.Header.Set("X-Request-Id", ex.requestID)
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ex.route = g.match(ex.path)
		if c, ok := ctx.Conn().(*cappedConn); ok {
			c.lingerOnClose() // the body is still arriving: no RST over the 413
		}
		writeDetail(ctx, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", g.cfg.MaxBodyBytes))
	case errors.As(err, &small):
		writeDetail(ctx, http.StatusRequestHeaderFieldsTooLarge, "request header exceeds "+strconv.Itoa(g.cfg.Limits.MaxHeaderBytes)+" bytes")
	case errors.As(err, &netErr) && netErr.Timeout():
		writeDetail(ctx, http.StatusRequestTimeout, "request not received in time")
	default:
		writeDetail(ctx, http.StatusBadRequest, "malformed request")
	}
	ex.status = ctx.Response.StatusCode()
	g.finish(ex)
}

func (g *Gateway) proxyError(ctx *fasthttp.RequestCtx, err error) {
	var gwErr *gatewayError
	if errors.As(err, &gwErr) {
		writeDetail(ctx, gwErr.status, gwErr.detail)
		return
	}
	writeDetail(ctx, http.StatusBadGateway, "bad gateway: "+err.Error())
}

// finish records the exchange in the metrics and the access log and
// releases it.
func (g *Gateway) finish(ex *exchange) {
	elapsed := time.Since(ex.start)
	status := ex.status
	um := ex.upstream
	if um == nil {
		rm := g.unmatchedMetrics
		switch {
		case ex.route != nil:
			rm = ex.route.metrics
		case ex.path == "/health":
			rm = g.healthMetrics
		}
		um = rm.upstream(netip.AddrPort{})
	}
	um.observe(status, elapsed)
	if ex.backend != nil {
		ex.backend.metrics.observe(status, elapsed)
	}
	g.access.write(&accessEntry{
		Time:       ex.start,
		RequestID:  ex.requestID,
		Method:     ex.method,
		Path:       ex.path,
		Status:     status,
		Bytes:      ex.bytes,
		DurationMS: float64(elapsed.Microseconds()) / 1000,
		Route:      um.route.label,
		Upstream:   um.name,
		Attempts:   ex.attempts,
		Client:     ex.client,
	})
	g.release(ex)
}

// methodString is the request's method without an allocation for the
// usual ones.
func methodString(m []byte) string {
	for _, known := range [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		if string(m) == known {
			return known
		}
	}
	return string(m)
}

// clientIP is the address of the client's end of the connection: the
// one the listener noted when it accepted it, else formatted here.
func clientIP(ctx *fasthttp.RequestCtx) string {
	if c, ok := ctx.Conn().(*cappedConn); ok {
		return c.client
	}
	return remoteIP(ctx.RemoteAddr())
}

// remoteIP formats a connection's remote address without its port.
func remoteIP(remote net.Addr) string {
	if addr, ok := remote.(*net.TCPAddr); ok {
		return addr.AddrPort().Addr().Unmap().String()
	}
	return remote.String()
}
