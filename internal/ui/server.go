package ui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/weft-dev/weft/internal/api"
)

//go:embed assets
var assets embed.FS

// Config is one `weft ui`.
type Config struct {
	Cluster  string // its name, shown before the first status is read
	Source   Source
	Interval time.Duration // how often the status is read; DefaultInterval when 0
	// AllowRemote accepts any Host header (set with a non-loopback listen,
	// which CheckListen refuses without it).
	AllowRemote bool
	Log         *slog.Logger
}

// Server serves the page, its event stream and its actions.
type Server struct {
	cfg   Config
	hub   *hub
	poll  *poller
	guard guard
}

// New makes a server for a listener at addr (its real address).
func New(cfg Config, addr string) *Server {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	h := newHub()
	return &Server{
		cfg:   cfg,
		hub:   h,
		poll:  &poller{src: cfg.Source, hub: h, log: cfg.Log, now: time.Now, view: View{Cluster: cfg.Cluster}},
		guard: newGuard(addr, cfg.AllowRemote),
	}
}

// Serve polls the source and serves ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go s.poll.run(ctx, s.cfg.Interval)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving the page: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx) // event streams end with ctx (BaseContext)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the page: %w", err)
	}
	return nil
}

// Handler is the page's routes.
func (s *Server) Handler() http.Handler {
	static, _ := fs.Sub(assets, "assets")
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /events", s.handleEvents)
	mux.HandleFunc("GET /api/view", s.handleView)
	mux.HandleFunc("POST /api/restart", s.handleRestart)
	mux.HandleFunc("GET /api/logs", s.handleLogs)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.guard.page(r); err != nil {
			api.WriteError(w, http.StatusForbidden, err)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		mux.ServeHTTP(w, r)
	})
}

// keepAlive is how often an idle event stream gets a comment, so proxies
// and the browser see it is alive.
const keepAlive = 15 * time.Second

// handleEvents streams views as Server-Sent Events: the current one at
// once, then each one that differs from the last.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		api.WriteError(w, http.StatusInternalServerError, errors.New("streaming is not supported here"))
		return
	}
	sub, cancel := s.hub.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 1000\n\n")
	fl.Flush()
	t := time.NewTicker(keepAlive)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
			fmt.Fprint(w, ": alive\n\n")
		case v := <-sub.ch:
			// A view is one line of JSON: json.Marshal escapes newlines.
			fmt.Fprintf(w, "event: view\ndata: %s\n\n", v)
		}
		fl.Flush()
	}
}

// handleView is the current view as JSON.
func (s *Server) handleView(w http.ResponseWriter, _ *http.Request) {
	v := s.hub.current()
	if v == nil {
		api.WriteError(w, http.StatusServiceUnavailable, errors.New("no status read yet; retry in a moment"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(v)
}

// restartTimeout bounds a restart: the old process has its service's
// stop_grace (default 10s) before SIGKILL.
const restartTimeout = 2 * time.Minute

func (s *Server) handleRestart(w http.ResponseWriter, r *http.Request) {
	if err := s.guard.action(r); err != nil {
		api.WriteError(w, http.StatusForbidden, err)
		return
	}
	var req api.RestartRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("decoding restart request: %w", err))
		return
	}
	c, ok := s.poll.container(req.Container)
	if !ok {
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("no container %q in the cluster's status", req.Container))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), restartTimeout)
	defer cancel()
	s.cfg.Log.Info("restart asked from the page", "container", c.Container, "host", c.Host)
	res, err := s.cfg.Source.Restart(ctx, c.Host, c.Container)
	if err != nil {
		api.WriteError(w, http.StatusBadGateway, fmt.Errorf("restarting %s on %s: %w", c.Container, c.Host, err))
		return
	}
	api.WriteJSON(w, http.StatusOK, res)
}

// handleLogs streams a container's output (?container=NAME[&follow=1]).
func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	if err := s.guard.action(r); err != nil {
		api.WriteError(w, http.StatusForbidden, err)
		return
	}
	name := r.URL.Query().Get("container")
	c, ok := s.poll.container(name)
	if !ok {
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("no container %q in the cluster's status", name))
		return
	}
	fw := &flushWriter{w: w}
	if fl, ok := w.(http.Flusher); ok {
		fw.flush = fl.Flush
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	err := s.cfg.Source.Logs(r.Context(), c.Host, c.Container, r.URL.Query().Get("follow") == "1", fw)
	if err != nil && !fw.wrote {
		api.WriteError(w, http.StatusBadGateway, fmt.Errorf("reading %s's output from %s: %w", c.Container, c.Host, err))
	}
}

// flushWriter sends each write to the browser at once.
type flushWriter struct {
	w     io.Writer
	flush func()
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	if f.flush != nil {
		f.flush()
	}
	return n, err
}
