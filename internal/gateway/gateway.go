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
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// statusClientClosed is recorded when the client went away before the
	// gateway could answer (nginx's convention).
	statusClientClosed = 499
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
	transport *http.Transport
	// proxy relays protocol upgrades (WebSocket); every other request takes
	// forward, which does the same work without ReverseProxy's per-request
	// cloning, header canonicalisation and extra contexts.
	proxy   *httputil.ReverseProxy
	buffers sync.Pool // *[]byte for copying response bodies
	health  []byte

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
func (r *route) choose(h http.Header) *routeBackend {
	if r.match != nil {
		if v := h.Values(r.Match.Header); len(v) > 0 && v[0] == r.Match.Value {
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
		cfg:      cfg,
		resolver: res,
		log:      log,
		access:   newAccessLog(accessOut),
		metrics:  newMetrics(),
		outliers: newOutliers(ejectFor),
		health:   healthBody(cfg.Name),
		started:  time.Now(),
		buffers:  sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }},
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

	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	g.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{addr: addr, err: err}
			}
			return conn, nil
		},
		// Per host at least as many as concurrent client connections, so a
		// busy instance's connections are reused instead of re-dialled.
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		// Shorter than the idle timeout of common servers, so the gateway
		// closes idle connections before a backend does and a request rarely
		// lands on a connection the backend is closing.
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: g.rewrite,
		Transport: roundTripperFunc(func(out *http.Request) (*http.Response, error) {
			return g.roundTrip(out.Context(), out, exchangeFrom(out.Context()))
		}),
		ErrorHandler:   g.proxyError,
		ModifyResponse: dropUpstreamRequestID,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return g, nil
}

// Handler is the proxy, including the gateway's own /health.
func (g *Gateway) Handler() http.Handler { return http.HandlerFunc(g.serve) }

// server is the HTTP server of the proxy, with every limit of cfg.Limits.
func (g *Gateway) server(errLog *log.Logger) *http.Server {
	lim := g.cfg.Limits
	return &http.Server{
		Addr:              g.cfg.Listen,
		Handler:           g.Handler(),
		ReadHeaderTimeout: lim.HeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      writeTimeout(g.cfg.Routes),
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          errLog,
	}
}

// Run serves cfg.Listen and the metrics on cfg.MetricsListen (at /metrics)
// until ctx is done, then shuts down gracefully.
func (g *Gateway) Run(ctx context.Context) error {
	defer g.access.flush()
	defer g.transport.CloseIdleConnections()
	errLog := slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)
	mux := http.NewServeMux()
	mux.Handle("/metrics", g.MetricsHandler())
	lim := g.cfg.Limits
	servers := []*http.Server{
		g.server(errLog),
		{Addr: g.cfg.MetricsListen, Handler: mux, ReadHeaderTimeout: lim.HeaderTimeout, ReadTimeout: lim.ReadTimeout,
			WriteTimeout: lim.ReadTimeout, IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: lim.MaxHeaderBytes, ErrorLog: errLog},
		{Addr: g.cfg.AdminListen(), Handler: g.AdminHandler(), ReadHeaderTimeout: lim.HeaderTimeout, ReadTimeout: lim.ReadTimeout,
			WriteTimeout: lim.ReadTimeout, IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: lim.MaxHeaderBytes, ErrorLog: errLog},
	}
	listeners := make([]net.Listener, 0, len(servers))
	for _, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("gateway listening on %s: %w", srv.Addr, err)
		}
		if srv.Addr == g.cfg.Listen {
			ln = newCapListener(ln, lim.MaxConnections, g.metrics.connectionsRefused.Inc)
		}
		listeners = append(listeners, ln)
	}
	g.log.Info("gateway serving", "listen", g.cfg.Listen, "metrics", g.cfg.MetricsListen, "admin", g.cfg.AdminListen(), "routes", len(g.routes))

	group, groupCtx := errgroup.WithContext(ctx)
	for i, srv := range servers {
		group.Go(func() error {
			if err := srv.Serve(listeners[i]); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("gateway serving %s: %w", srv.Addr, err)
			}
			return nil
		})
	}
	group.Go(func() error {
		<-groupCtx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		var errs []error
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
// the proxy. The upgrade path finds it in the request's context.
type exchange struct {
	rec       responseRecorder
	start     time.Time
	requestID string
	idValue   [1]string // requestID as a header value, shared by both headers
	route     *route
	backend   *routeBackend // the route's backend chosen for this request
	body      []byte        // the buffered request body; nil when there is none
	attempts  int
	upstream  *upstreamMetrics // the last instance tried; nil before any

	out   http.Request          // what forward sends upstream
	trace httptrace.ClientTrace // forward's hook for interim responses
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{start: time.Now(), rec: responseRecorder{ResponseWriter: w}}
	ex.requestID = g.requestID(r.Header["X-Request-Id"])
	ex.idValue[0] = ex.requestID
	w.Header()["X-Request-Id"] = ex.idValue[:]
	finished := false
	defer func() {
		if !finished {
			// The proxy aborts a response whose upstream body broke after the
			// status was sent (http.ErrAbortHandler); record it, then let
			// net/http abort the connection.
			g.record(r, ex)
			if v := recover(); v != nil {
				panic(v)
			}
		}
	}()
	g.handle(&ex.rec, r, ex)
	finished = true
	g.record(r, ex)
}

func (g *Gateway) handle(w http.ResponseWriter, r *http.Request, ex *exchange) {
	if r.URL.Path == "/health" {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Write(g.health)
		return
	}
	ex.route = g.match(r.URL.Path)
	if ex.route == nil {
		writeDetail(w, http.StatusNotFound, "no route for "+r.URL.Path)
		return
	}
	ex.backend = ex.route.choose(r.Header)
	if r.ContentLength > g.cfg.MaxBodyBytes {
		writeDetail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", g.cfg.MaxBodyBytes))
		return
	}
	if r.ContentLength != 0 {
		// Read the whole body before choosing an instance, like nginx's
		// request buffering: a body of unknown length is measured before
		// anything reaches a backend, and a retry can send it again.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeDetail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", g.cfg.MaxBodyBytes))
				return
			}
			writeDetail(w, http.StatusBadRequest, "reading request body: "+err.Error())
			return
		}
		ex.body = body
		r.ContentLength = int64(len(body))
		r.TransferEncoding = nil
		r.Body = http.NoBody
	}
	if len(r.Header["Upgrade"]) > 0 {
		g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)))
		return
	}
	g.forward(w, r, ex)
}

func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	ex := exchangeFrom(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	// roundTrip replaces the host with the chosen instance on every attempt.
	pr.Out.URL.Host = ex.backend.Service
	// Keep the client's chain: Rewrite strips inbound X-Forwarded-* headers
	// and SetXForwarded appends to what is already on the outbound request.
	if xff, ok := pr.In.Header["X-Forwarded-For"]; ok {
		pr.Out.Header["X-Forwarded-For"] = xff
	}
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Request-ID", ex.requestID)
}

// dropUpstreamRequestID keeps the response's X-Request-ID the gateway's own
// (already set on the response), not a second copy from the backend.
func dropUpstreamRequestID(resp *http.Response) error {
	resp.Header.Del("X-Request-ID")
	return nil
}

func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	var gwErr *gatewayError
	switch {
	case errors.As(err, &gwErr):
		writeDetail(w, gwErr.status, gwErr.detail)
	case r.Context().Err() != nil:
		w.WriteHeader(statusClientClosed)
	default:
		writeDetail(w, http.StatusBadGateway, "bad gateway: "+err.Error())
	}
}

func (g *Gateway) record(r *http.Request, ex *exchange) {
	elapsed := time.Since(ex.start)
	status := ex.rec.statusCode()
	um := ex.upstream
	if um == nil {
		rm := g.unmatchedMetrics
		switch {
		case ex.route != nil:
			rm = ex.route.metrics
		case r.URL.Path == "/health":
			rm = g.healthMetrics
		}
		um = rm.upstream(netip.AddrPort{})
	}
	um.observe(status, elapsed)
	if ex.backend != nil {
		ex.backend.metrics.observe(status, elapsed)
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	g.access.write(&accessEntry{
		Time:       ex.start,
		RequestID:  ex.requestID,
		Method:     r.Method,
		Path:       r.URL.Path,
		Status:     status,
		Bytes:      ex.rec.bytes,
		DurationMS: float64(elapsed.Microseconds()) / 1000,
		Route:      um.route.label,
		Upstream:   um.name,
		Attempts:   ex.attempts,
		Client:     client,
	})
}

// responseRecorder remembers the status and size of what the handler wrote.
type responseRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rec *responseRecorder) WriteHeader(code int) {
	// 1xx responses are interim; the final status is still to come.
	if rec.status == 0 && code >= 200 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *responseRecorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Flush keeps streaming responses streaming through the recorder.
func (rec *responseRecorder) Flush() {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	http.NewResponseController(rec.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach Hijack and deadlines (upgrades).
func (rec *responseRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

func (rec *responseRecorder) statusCode() int {
	if rec.status == 0 {
		// Nothing written: a handler that returns without writing sends 200.
		return http.StatusOK
	}
	return rec.status
}
