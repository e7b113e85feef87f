// Package publish exposes the lab's gateways on a loopback port of the
// machine. The root namespace has, and must never get, a route to lab
// addresses; so the publisher listens on 127.0.0.1 in the root namespace
// and opens each backend connection from inside a lab host's namespace (a
// socket keeps the namespace it was created in), then copies bytes both ways.
// It forwards TCP; HTTP is the gateway's business.
package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weft-dev/weft/internal/nsthread"
)

// DefaultCheckInterval is how often backends are probed when Config leaves it zero.
const DefaultCheckInterval = 500 * time.Millisecond

// dialTimeout bounds opening a forwarded connection; the backend sits on the
// same machine, so anything slower means it is gone and the next one is tried.
const dialTimeout = time.Second

// redialFor is how long a connection waits for some backend to accept when
// every one refused: a gateway restarting after a crash, or a VIP moving to
// another host, take a few hundred milliseconds, and the user's connection
// is already accepted.
const redialFor = 2 * time.Second

// Backend is one gateway instance, reached from a lab host's namespace.
type Backend struct {
	Name  string         // shown by Healthy and in logs, e.g. "api-gateway-1"
	Addr  netip.AddrPort // overlay address, e.g. 10.10.0.100:80
	Netns string         // named netns to dial from, e.g. naming.HostNetns(cluster, "host1")
}

func (b Backend) String() string {
	return fmt.Sprintf("%s (%s from netns %s)", b.Name, b.Addr, b.Netns)
}

// Config says where to listen and where to forward.
type Config struct {
	Listen        string // loopback host:port, e.g. "127.0.0.1:8080"
	Backends      []Backend
	CheckInterval time.Duration // 0 means DefaultCheckInterval
}

// Publisher forwards connections from a loopback port to healthy backends.
type Publisher struct {
	listen   string
	interval time.Duration
	log      *slog.Logger
	next     atomic.Uint64
	recheck  chan struct{}

	mu       sync.Mutex
	backends []Backend
	healthy  map[Backend]bool
}

// New checks cfg and builds a Publisher; Run starts it.
func New(cfg Config, log *slog.Logger) (*Publisher, error) {
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	var errs []error
	if err := checkLoopback(cfg.Listen); err != nil {
		errs = append(errs, err)
	}
	if cfg.CheckInterval < 0 {
		errs = append(errs, fmt.Errorf("check interval %s is negative; use a positive duration such as 500ms", cfg.CheckInterval))
	}
	errs = append(errs, validateBackends(cfg.Backends)...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("publish config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{
		listen:   cfg.Listen,
		interval: cfg.CheckInterval,
		log:      log,
		recheck:  make(chan struct{}, 1),
		healthy:  make(map[Backend]bool),
	}
	p.setBackends(cfg.Backends)
	return p, nil
}

// checkLoopback refuses anything but a loopback listen address: publishing
// on an outside interface would expose the lab beyond this machine.
func checkLoopback(listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen: %q is not host:port; write it like \"127.0.0.1:8080\"", listen)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("listen: port %q of %q is not a port number", port, listen)
	}
	if host == "localhost" {
		return nil
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !addr.IsLoopback() {
		return fmt.Errorf("listen: %q is not a loopback address; publish on 127.0.0.1 or [::1] so the lab stays on this machine", listen)
	}
	return nil
}

func validateBackends(backends []Backend) []error {
	var errs []error
	names := make(map[string]bool, len(backends))
	for i, b := range backends {
		field := fmt.Sprintf("backends[%d]", i)
		if b.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: empty; name the gateway instance", field))
		} else if names[b.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q appears twice; give each backend its own name", field, b.Name))
		}
		names[b.Name] = true
		if !b.Addr.IsValid() || b.Addr.Port() == 0 {
			errs = append(errs, fmt.Errorf("%s.addr: %q is not ip:port; write it like 10.10.0.100:80", field, b.Addr))
		}
		if b.Netns == "" || strings.Contains(b.Netns, "/") {
			errs = append(errs, fmt.Errorf("%s.netns: %q is not a named network namespace; use the host's, e.g. weft.<cluster>.h.<host>", field, b.Netns))
		}
	}
	return errs
}

// SetBackends replaces the backends while running; calling it again with
// the same list changes nothing. Backends that stay keep their health; new
// ones are assumed healthy until a dial or check fails, and are checked at
// once. Invalid entries are logged and left out.
func (p *Publisher) SetBackends(backends []Backend) {
	if errs := validateBackends(backends); len(errs) > 0 {
		p.log.Error("publish: ignoring invalid backends", "err", errors.Join(errs...))
		backends = slices.DeleteFunc(slices.Clone(backends), func(b Backend) bool {
			return len(validateBackends([]Backend{b})) > 0
		})
	}
	if !p.setBackends(backends) {
		return
	}
	select {
	case p.recheck <- struct{}{}:
	default:
	}
}

// setBackends installs the list and reports whether it differs from the old one.
func (p *Publisher) setBackends(backends []Backend) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.Equal(p.backends, backends) {
		return false
	}
	healthy := make(map[Backend]bool, len(backends))
	for _, b := range backends {
		up, known := p.healthy[b]
		healthy[b] = up || !known
	}
	p.backends = slices.Clone(backends)
	p.healthy = healthy
	return true
}

// Healthy names the backends that answered their last check or dial.
func (p *Publisher) Healthy() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var names []string
	for _, b := range p.backends {
		if p.healthy[b] {
			names = append(names, b.Name)
		}
	}
	return names
}

// mark records a backend's health, logging changes. A backend removed by
// SetBackends meanwhile is not brought back.
func (p *Publisher) mark(b Backend, up bool, cause error) {
	p.mu.Lock()
	was, present := p.healthy[b]
	if present {
		p.healthy[b] = up
	}
	p.mu.Unlock()
	switch {
	case !present || was == up:
	case up:
		p.log.Info("publish: backend up", "backend", b.Name, "addr", b.Addr, "netns", b.Netns)
	default:
		p.log.Warn("publish: backend down", "backend", b.Name, "addr", b.Addr, "netns", b.Netns, "err", cause)
	}
}

// candidates lists the backends to try for one connection: healthy ones in
// round-robin order, then the others, which may have come back since their
// last check.
func (p *Publisher) candidates() []Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.backends)
	if n == 0 {
		return nil
	}
	start := int(p.next.Add(1) % uint64(n))
	up := make([]Backend, 0, n)
	var down []Backend
	for i := range n {
		b := p.backends[(start+i)%n]
		if p.healthy[b] {
			up = append(up, b)
		} else {
			down = append(down, b)
		}
	}
	return append(up, down...)
}

// Run listens, checks backends every CheckInterval and forwards connections
// until ctx is done; then it closes the listener and every forwarded
// connection and returns.
func (p *Publisher) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", p.listen)
	if err != nil {
		return fmt.Errorf("publishing on %s: %w", p.listen, err)
	}
	p.log.Info("publish: listening", "listen", ln.Addr().String(), "backends", len(p.snapshot()))
	stopListening := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopListening()

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { p.checkLoop(ctx) })
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(50 * time.Millisecond) // out of file descriptors: let some close
				continue
			}
			ln.Close()
			return fmt.Errorf("accepting on %s: %w", p.listen, err)
		}
		wg.Go(func() { p.forward(ctx, conn) })
	}
}

func (p *Publisher) snapshot() []Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.backends)
}

func (p *Publisher) checkLoop(ctx context.Context) {
	ticker := time.NewTicker(p.interval)
	defer ticker.Stop()
	for {
		p.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-p.recheck:
		}
	}
}

// checkAll opens and closes a TCP connection to every backend from its
// namespace, all at once so one dead backend does not delay the others.
func (p *Publisher) checkAll(ctx context.Context) {
	timeout := min(max(p.interval, 100*time.Millisecond), 2*time.Second)
	var wg sync.WaitGroup
	for _, b := range p.snapshot() {
		wg.Go(func() {
			conn, err := dialFrom(ctx, b, timeout)
			if err != nil {
				if ctx.Err() == nil {
					p.mark(b, false, err)
				}
				return
			}
			conn.Close()
			p.mark(b, true, nil)
		})
	}
	wg.Wait()
}

func (p *Publisher) forward(ctx context.Context, client net.Conn) {
	defer client.Close()
	var upstream net.Conn
	var errs []error
	giveUp := time.Now().Add(redialFor)
	for round := 0; upstream == nil && time.Now().Before(giveUp); round++ {
		if round > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		errs = errs[:0] // report the last round's
		for _, b := range p.candidates() {
			conn, err := dialFrom(ctx, b, dialTimeout)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				p.mark(b, false, err)
				errs = append(errs, err)
				continue
			}
			p.mark(b, true, nil)
			upstream = conn
			break
		}
		if len(errs) == 0 {
			break // no backends at all
		}
	}
	if upstream == nil {
		p.log.Warn("publish: no backend reachable; closing the connection", "client", client.RemoteAddr().String(), "err", errors.Join(errs...))
		return
	}
	defer upstream.Close()
	stop := context.AfterFunc(ctx, func() {
		client.Close()
		upstream.Close()
	})
	defer stop()
	splice(client, upstream)
}

// splice copies both ways until both directions are done. A clean end of one
// direction is passed on as a half-close, so request/response protocols that
// shut down their sending side still get their answer; an error in either
// direction tears down both.
func splice(a, b net.Conn) {
	done := make(chan error, 2)
	pipe := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if err == nil {
			err = closeWrite(dst)
		}
		done <- err
	}
	go pipe(a, b)
	go pipe(b, a)
	if err := <-done; err != nil {
		a.Close()
		b.Close()
	}
	<-done
}

func closeWrite(c net.Conn) error {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return c.Close()
}

// dialFrom opens a TCP connection to b.Addr from inside the named network
// namespace b.Netns: the socket is created on a thread switched into it and
// keeps that namespace for life.
func dialFrom(ctx context.Context, b Backend, timeout time.Duration) (net.Conn, error) {
	conn, err := nsthread.DialNamed(ctx, b.Netns, &net.Dialer{Timeout: timeout}, "tcp", b.Addr.String())
	if err != nil {
		return nil, fmt.Errorf("connecting to backend %s: %w", b, err)
	}
	return conn, nil
}
