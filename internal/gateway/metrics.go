package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics live on the gateway's own registry, never the process-wide
// default, so two gateways in one process (tests) do not collide.
type metrics struct {
	registry       *prometheus.Registry
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	retries        *prometheus.CounterVec
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
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "upstream"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_gateway_upstream_errors_total",
			Help: "Failed attempts to reach an upstream instance, by kind: dial, reset, timeout, protocol.",
		}, []string{"route", "upstream", "kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_gateway_retries_total",
			Help: "Attempts sent to another instance after a failed one.",
		}, []string{"route"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.upstreamErrors, m.retries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(route, upstream string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(route, upstream, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, upstream).Observe(elapsed.Seconds())
}

// MetricsHandler serves the gateway's metrics in the Prometheus text format.
func (g *Gateway) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(g.metrics.registry, promhttp.HandlerOpts{})
}
