package gateway

import (
	"maps"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// durationBuckets are the upper bounds (seconds) of the duration histograms.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// metrics live on the gateway's own registry, never the process-wide
// default, so two gateways in one process (tests) do not collide.
type metrics struct {
	registry       *prometheus.Registry
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	retries        *prometheus.CounterVec
	// backendRequests and backendDuration are by route and backend
	// service, what a traffic shift analyses (a version's error rate and
	// latency across its instances).
	backendRequests *prometheus.CounterVec
	backendDuration *prometheus.HistogramVec
	// connectionsRefused counts client connections closed at once because
	// the gateway already had Limits.MaxConnections open.
	connectionsRefused prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_gateway_requests_total",
			Help: "Requests answered, by route prefix, upstream instance (host:port) and status code.",
		}, []string{"route", "upstream", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weft_gateway_request_duration_seconds",
			Help:    "Time from receiving a request to the end of its response, by route prefix and upstream instance.",
			Buckets: durationBuckets,
		}, []string{"route", "upstream"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_gateway_upstream_errors_total",
			Help: "Failed attempts to reach an upstream instance, by kind: dial, reset, timeout, protocol.",
		}, []string{"route", "upstream", "kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_gateway_retries_total",
			Help: "Attempts sent to another instance after a failed one.",
		}, []string{"route"}),
		backendRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_gateway_backend_requests_total",
			Help: "Requests answered, by route prefix, backend service and status code.",
		}, []string{"route", "service", "code"}),
		backendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weft_gateway_backend_request_duration_seconds",
			Help:    "Time from receiving a request to the end of its response, by route prefix and backend service.",
			Buckets: durationBuckets,
		}, []string{"route", "service"}),
		connectionsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_gateway_connections_refused_total",
			Help: "Client connections closed at once because the gateway had its maximum open.",
		}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.upstreamErrors, m.retries, m.connectionsRefused, m.backendRequests, m.backendDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// routeMetrics holds the observers of one route label. Looking up a label
// set in a metric vector hashes the label values and takes a lock on every
// request; instead each route resolves its observers once per upstream and
// status code and keeps them in copy-on-write maps that requests read
// without a lock.
type routeMetrics struct {
	label   string
	metrics *metrics
	retries prometheus.Counter

	grow      sync.Mutex // serialises copy-on-write growth of upstreams
	upstreams atomic.Pointer[map[netip.AddrPort]*upstreamMetrics]
}

// upstreamMetrics are the observers of one route and upstream instance; the
// zero AddrPort stands for "no upstream" (answers of the gateway itself).
type upstreamMetrics struct {
	route    *routeMetrics
	name     string // host:port, the upstream label and access-log field
	duration prometheus.Observer

	grow  sync.Mutex // serialises copy-on-write growth of codes
	codes atomic.Pointer[map[int]prometheus.Counter]
}

func (m *metrics) forRoute(label string) *routeMetrics {
	rm := &routeMetrics{label: label, metrics: m, retries: m.retries.WithLabelValues(label)}
	rm.upstreams.Store(&map[netip.AddrPort]*upstreamMetrics{})
	return rm
}

// upstream returns the observers for endpoint, creating them on first use.
func (rm *routeMetrics) upstream(endpoint netip.AddrPort) *upstreamMetrics {
	if um, ok := (*rm.upstreams.Load())[endpoint]; ok {
		return um
	}
	rm.grow.Lock()
	defer rm.grow.Unlock()
	current := *rm.upstreams.Load()
	if um, ok := current[endpoint]; ok {
		return um
	}
	name := noUpstream
	if endpoint.IsValid() {
		name = endpoint.String()
	}
	um := &upstreamMetrics{route: rm, name: name, duration: rm.metrics.duration.WithLabelValues(rm.label, name)}
	um.codes.Store(&map[int]prometheus.Counter{})
	grown := maps.Clone(current)
	grown[endpoint] = um
	rm.upstreams.Store(&grown)
	return um
}

func (um *upstreamMetrics) observe(status int, elapsed time.Duration) {
	um.requests(status).Inc()
	um.duration.Observe(elapsed.Seconds())
}

func (um *upstreamMetrics) requests(status int) prometheus.Counter {
	if c, ok := (*um.codes.Load())[status]; ok {
		return c
	}
	um.grow.Lock()
	defer um.grow.Unlock()
	current := *um.codes.Load()
	if c, ok := current[status]; ok {
		return c
	}
	c := um.route.metrics.requests.WithLabelValues(um.route.label, um.name, strconv.Itoa(status))
	grown := maps.Clone(current)
	grown[status] = c
	um.codes.Store(&grown)
	return c
}

// backendMetrics are the observers of one route and backend service.
type backendMetrics struct {
	duration prometheus.Observer
	codes    *prometheus.CounterVec // curried with route and service
	grow     sync.Mutex             // serialises copy-on-write growth of byCode
	byCode   atomic.Pointer[map[int]prometheus.Counter]
}

func (m *metrics) forBackend(route, service string) *backendMetrics {
	labels := prometheus.Labels{"route": route, "service": service}
	bm := &backendMetrics{duration: m.backendDuration.With(labels), codes: m.backendRequests.MustCurryWith(labels)}
	bm.byCode.Store(&map[int]prometheus.Counter{})
	return bm
}

func (bm *backendMetrics) observe(status int, elapsed time.Duration) {
	c, ok := (*bm.byCode.Load())[status]
	if !ok {
		bm.grow.Lock()
		current := *bm.byCode.Load()
		if c, ok = current[status]; !ok {
			c = bm.codes.WithLabelValues(strconv.Itoa(status))
			grown := maps.Clone(current)
			grown[status] = c
			bm.byCode.Store(&grown)
		}
		bm.grow.Unlock()
	}
	c.Inc()
	bm.duration.Observe(elapsed.Seconds())
}

// MetricsHandler serves the gateway's metrics in the Prometheus text format.
func (g *Gateway) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(g.metrics.registry, promhttp.HandlerOpts{})
}
