// Package health decides whether a container is healthy: Probe runs one
// check (HTTP, TCP or exec), Tracker turns a series of probe results into a
// health value, and Run ties them together on the check's interval.
//
// Probes dial the container's overlay address from the calling network
// namespace; the agent runs them inside the host's namespace, where the
// host bridge reaches every local container.
package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// maxBodyDrain bounds how much of a health response is read before closing.
const maxBodyDrain = 64 << 10

// Probe runs one check of h against the container at addr, bounded by
// h.Timeout (fields left zero take spec's defaults, spec.Health.Defaulted):
//   - HTTP: GET http://addr:port<path>, healthy on 2xx or 3xx (redirects are
//     not followed); port is h.Port, else defaultPort;
//   - TCP: a connection to addr:h.TCP is accepted;
//   - Exec: execFn(ctx, argv) returns nil (the agent runs argv inside the
//     container and returns nil on exit 0).
//
// It returns nil when healthy, else an error saying what failed, e.g.
// "GET http://10.10.0.5:8080/health: status 503".
func Probe(ctx context.Context, h spec.Health, addr netip.Addr, defaultPort int, execFn func(ctx context.Context, argv []string) error) error {
	h = h.Defaulted()
	ctx, cancel := context.WithTimeout(ctx, h.Timeout.Duration)
	defer cancel()
	switch {
	case h.HTTP != "":
		port := h.Port
		if port == 0 {
			port = defaultPort
		}
		return probeHTTP(ctx, h.HTTP, addr, port, h.Timeout.Duration)
	case h.TCP != 0:
		return probeTCP(ctx, netip.AddrPortFrom(addr, uint16(h.TCP)), h.Timeout.Duration)
	case len(h.Exec) > 0:
		if execFn == nil {
			return fmt.Errorf("exec %q: no way to run commands in the container", h.Exec)
		}
		if err := execFn(ctx, h.Exec); err != nil {
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("exec %q: timed out after %s", h.Exec, h.Timeout.Duration)
			}
			return fmt.Errorf("exec %q: %w", h.Exec, err)
		}
		return nil
	default:
		return errors.New("health check has none of http, tcp, exec: set exactly one of them")
	}
}

// probeHTTP makes one GET on a connection of its own, closed after the
// response: no http.Client or Transport (and so no connection pool, idle
// connection or background goroutine) per probe. A host probes every local
// container every few seconds, so what a probe allocates is paid hosts x
// containers times per interval. No proxy is consulted: a proxy from the
// environment would carry lab traffic off the machine. Redirects are not
// followed, and informational (1xx) responses are skipped, as the
// client did.
func probeHTTP(ctx context.Context, path string, addr netip.Addr, port int, limit time.Duration) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("http health check %s: no valid port (%d): set health.port or the service's port", path, port)
	}
	target := "http://" + net.JoinHostPort(addr.String(), strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", target, err)
	}
	req.Close = true // "Connection: close": one request per connection
	status, err := getOnce(ctx, req)
	if err != nil {
		// The connection's deadline is the context's: it may fire first.
		if ctx.Err() == context.DeadlineExceeded || errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("GET %s: timed out after %s", target, limit)
		}
		return fmt.Errorf("GET %s: %w", target, err)
	}
	if status < 200 || status >= 400 {
		return fmt.Errorf("GET %s: status %d", target, status)
	}
	return nil
}

// getOnce sends req on a new connection to its URL's host and returns the
// final response's status, after reading at most maxBodyDrain of its body.
// The connection is closed when ctx ends, which ends a blocked read or write.
func getOnce(ctx context.Context, req *http.Request) (int, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", req.URL.Host)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	w := bufio.NewWriter(conn)
	if err := req.Write(w); err != nil {
		return 0, fmt.Errorf("writing the request: %w", err)
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("writing the request: %w", err)
	}
	r := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(r, req)
		if err != nil {
			return 0, fmt.Errorf("reading the response: %w", err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyDrain))
		_ = resp.Body.Close()
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // 100 Continue, 103 Early Hints: the final response follows
		}
		return resp.StatusCode, nil
	}
}

func probeTCP(ctx context.Context, target netip.AddrPort, limit time.Duration) error {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", target.String())
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("connect %s: timed out after %s", target, limit)
		}
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			err = opErr.Err
		}
		return fmt.Errorf("connect %s: %w", target, err)
	}
	_ = conn.Close()
	return nil
}

// Tracker turns probe results into a health value, like Docker:
//   - model.HealthStarting until the first success; failures during
//     StartPeriod (counted from started) do not count while still starting;
//   - model.HealthHealthy after a success;
//   - model.HealthUnhealthy after Retries (spec.DefaultHealthRetries when
//     zero) consecutive counted
//     failures; a later success makes it healthy again.
//
// A Tracker is not safe for concurrent use; Run owns one per container.
type Tracker struct {
	startPeriod time.Duration
	retries     int

	started  time.Time
	health   string
	failures int // consecutive counted failures
}

// NewTracker makes a tracker for a container started at started.
func NewTracker(h spec.Health, started time.Time) *Tracker {
	t := &Tracker{startPeriod: h.StartPeriod.Duration, retries: h.Defaulted().Retries}
	t.Reset(started)
	return t
}

// Reset puts the tracker back to starting, for a container (re)started at started.
func (t *Tracker) Reset(started time.Time) {
	t.started = started
	t.health = model.HealthStarting
	t.failures = 0
}

// Health is the current health value.
func (t *Tracker) Health() string { return t.health }

// Observe records one probe result (nil is a success) taken at now and
// returns the health value and whether it changed.
func (t *Tracker) Observe(err error, now time.Time) (health string, changed bool) {
	previous := t.health
	switch {
	case err == nil:
		t.failures = 0
		t.health = model.HealthHealthy
	case t.health == model.HealthStarting && now.Sub(t.started) < t.startPeriod:
		// Still booting: this failure is expected and not counted.
	default:
		t.failures++
		if t.failures >= t.retries {
			t.health = model.HealthUnhealthy
		}
	}
	return t.health, t.health != previous
}

// Run probes the container every h.Interval (spec.DefaultHealthInterval when
// zero) until ctx is done,
// the first probe immediately so a fresh container can be healthy within
// milliseconds, and calls onChange(health, lastErr) whenever the health value
// changes (lastErr is the probe's error, nil on success). started is when
// the container started (for StartPeriod). A probe that outlasts the
// interval delays the next one rather than overlapping it.
func Run(ctx context.Context, h spec.Health, addr netip.Addr, defaultPort int, execFn func(context.Context, []string) error, started time.Time, onChange func(health string, lastErr error)) {
	h = h.Defaulted()
	tracker := NewTracker(h, started)
	every := h.Interval.Duration
	quick := startingInterval
	for {
		err := Probe(ctx, h, addr, defaultPort, execFn)
		if ctx.Err() != nil {
			return
		}
		if health, changed := tracker.Observe(err, time.Now()); changed {
			onChange(health, err)
		}
		// Until the first success a fresh process is most likely just not
		// listening yet: probe soon so it is served as soon as it is ready
		// instead of one whole interval later. The pause doubles each time,
		// so a slow starter costs a handful of extra probes, not a storm
		// (hundreds of containers start at once on a busy machine).
		next := every
		if tracker.Health() == model.HealthStarting && len(h.Exec) == 0 && quick < next {
			next = quick
			quick *= 2
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// startingInterval is the first pause between the probes of a container
// that has not passed its first check yet; it doubles up to the interval.
// Exec checks keep their interval: each one starts a process.
const startingInterval = 25 * time.Millisecond
