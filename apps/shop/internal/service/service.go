// Package service is the frame every shop service runs in: its database with
// migrations retried until the database answers, the /health route, the
// router with its middleware, and the process entry (env, logs, signals).
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weft-dev/weft/apps/shop/internal/db"
	"github.com/weft-dev/weft/apps/shop/internal/httpx"
)

// Base is the part every service shares.
type Base struct {
	// Name is the service's name as /health reports it, e.g. "user-service".
	Name       string
	DB         *db.Pool
	Log        *slog.Logger
	migrations []string
	// Setup, if set, runs after the migrations in their transaction, before
	// the service serves its API (user-service makes its admin account there).
	Setup func(ctx context.Context, q db.Querier) error
	ready atomic.Bool
}

// NewBase prepares a service whose schema is made by migrations, statements
// that must be safe to run on every start (CREATE ... IF NOT EXISTS).
func NewBase(name string, pool *db.Pool, log *slog.Logger, migrations []string) *Base {
	return &Base{Name: name, DB: pool, Log: log.With("service", name), migrations: migrations}
}

// Migrate creates the schema once.
func (b *Base) Migrate(ctx context.Context) error {
	err := b.DB.Tx(ctx, func(q db.Querier) error {
		// Two replicas starting together must not race on CREATE TABLE.
		if _, err := q.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", b.Name); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
		for i, statement := range b.migrations {
			if _, err := q.Exec(ctx, statement); err != nil {
				return fmt.Errorf("running migration %d: %w", i+1, err)
			}
		}
		if b.Setup != nil {
			return b.Setup(ctx, q)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.ready.Store(true)
	return nil
}

// MigrateWithRetry runs the migrations, retrying with backoff until the
// database answers or ctx ends: the database may start after the service.
func (b *Base) MigrateWithRetry(ctx context.Context) error {
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := b.Migrate(ctx)
		if err == nil {
			b.Log.Info("database ready", "attempts", attempt)
			return nil
		}
		b.Log.Warn("database not ready, retrying", "attempt", attempt, "retry_in", delay.String(), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the database: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// Health answers 200 when the database answers, 503 otherwise.
func (b *Base) Health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if !b.ready.Load() {
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{
			"status": "unhealthy", "service": b.Name, "database": "schema not created yet: waiting for the database",
		})
		return
	}
	if err := b.DB.Ping(ctx); err != nil {
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{
			"status": "unhealthy", "service": b.Name, "database": err.Error(),
		})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": b.Name, "database": "ok"})
}

// Router collects a service's routes.
type Router struct {
	base *Base
	mux  *http.ServeMux
}

// NewRouter starts a router with /health and a JSON 404 for everything else.
func (b *Base) NewRouter() *Router {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", b.Health)
	mux.HandleFunc("/", httpx.NotFound)
	return &Router{base: b, mux: mux}
}

// Handle adds a route; pattern is written without a trailing slash (the
// middleware strips it from requests). Routes answer 503 until the schema
// exists.
func (rt *Router) Handle(pattern string, h httpx.HandlerFunc) {
	base := rt.base
	rt.mux.Handle(pattern, httpx.Handle(base.Log, func(w http.ResponseWriter, r *http.Request) error {
		if !base.ready.Load() {
			return httpx.Errorf(http.StatusServiceUnavailable, "%s is starting: its database does not answer yet", base.Name)
		}
		return h(w, r)
	}))
}

// Handler is the finished handler with middleware.
func (rt *Router) Handler() http.Handler {
	return httpx.Middleware(rt.base.Log, rt.mux)
}

// Logger is the JSON logger every service writes to stdout.
func Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stdout, nil))
}

// OpenDB opens the pool from DATABASE_URL and DB_MAX_CONNS.
func OpenDB() (*db.Pool, error) {
	var maxConns int32 = 10
	if s := os.Getenv("DB_MAX_CONNS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("DB_MAX_CONNS=%q must be a positive integer", s)
		}
		maxConns = int32(n)
	}
	return db.New(os.Getenv("DATABASE_URL"), maxConns)
}

// Run serves handler on PORT (default defaultPort) and migrates in the
// background, until SIGINT or SIGTERM.
func Run(base *Base, handler http.Handler, defaultPort string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	port := os.Getenv("PORT")
	if port == "" {
		port = defaultPort
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("PORT=%q must be a port number", port)
	}
	go func() {
		if err := base.MigrateWithRetry(ctx); err != nil {
			base.Log.Error("giving up on the database", "err", err)
		}
	}()
	defer base.DB.Close()
	return httpx.Serve(ctx, base.Log, ":"+port, handler)
}
