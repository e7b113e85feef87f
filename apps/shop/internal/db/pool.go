// Package db is the services' database access: a pgxpool.Pool whose errors
// say whether the database itself is unavailable, so handlers can answer 503
// for an outage and 500 for a bug.
package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Querier is what both a connection and a transaction offer.
type Querier interface {
	Exec(ctx context.Context, sql string, arguments ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const (
	// healthCheckPeriod is how often pgxpool retires idle and expired
	// connections in the background (default a minute). It does not test
	// liveness: the ping on acquire does.
	healthCheckPeriod = time.Second
	// pingTimeout bounds the liveness ping on acquire: a connection to a
	// vanished host would otherwise hang a request that has no deadline.
	pingTimeout = 2 * time.Second
	// connectTimeout applies when DATABASE_URL sets no connect_timeout.
	connectTimeout = 5 * time.Second
)

// Pool runs work on pooled connections and reports outages as
// *UnavailableError.
type Pool struct {
	pool *pgxpool.Pool
}

// UnavailableError says the database could not be reached or the connection
// broke: a state that passes once the database is back.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "database unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Temporary marks the error as one a client may retry.
func (e *UnavailableError) Temporary() bool { return true }

// New parses the connection URL; it does not connect, so a service can start
// before its database answers.
func New(databaseURL string, maxConns int32) (*Pool, error) {
	if databaseURL == "" {
		return nil, errors.New("DATABASE_URL is empty: set it to e.g. postgres://shop:secret@product-db:5432/products?sslmode=disable")
	}
	if maxConns < 1 {
		return nil, fmt.Errorf("database pool size %d: must be at least 1", maxConns)
	}
	config, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	if config.ConnConfig.ConnectTimeout == 0 {
		config.ConnConfig.ConnectTimeout = connectTimeout
	}
	config.MaxConns = maxConns
	config.HealthCheckPeriod = healthCheckPeriod
	config.PingTimeout = pingTimeout
	// pgxpool pings only connections idle for over a second, but a crashed
	// PostgreSQL can be back sooner than that, leaving connections that look
	// fresh and are dead. A ping per acquire (one round trip) keeps a
	// restart from failing the first request each of them meets.
	config.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return true }
	pool, err := pgxpool.NewWithConfig(context.Background(), config)
	if err != nil {
		return nil, fmt.Errorf("creating the database pool: %w", err)
	}
	return &Pool{pool: pool}, nil
}

// Do runs fn with one connection.
func (p *Pool) Do(ctx context.Context, fn func(Querier) error) error {
	return p.withConn(ctx, func(conn *pgxpool.Conn) error { return fn(conn) })
}

// Tx runs fn in a transaction, committed when fn returns nil and rolled back
// otherwise.
func (p *Pool) Tx(ctx context.Context, fn func(Querier) error) error {
	return p.withConn(ctx, func(conn *pgxpool.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return fn(tx) })
	})
}

func (p *Pool) withConn(ctx context.Context, fn func(*pgxpool.Conn) error) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("acquiring a database connection: %w", err)
		}
		return &UnavailableError{Err: err}
	}
	defer conn.Release()
	err = fn(conn)
	// A closed connection means the server went away, unless the caller's
	// context closed it (pgx closes a connection whose query was cancelled).
	if err != nil && conn.Conn().IsClosed() && ctx.Err() == nil {
		return &UnavailableError{Err: err}
	}
	return err
}

// Ping checks that the database answers.
func (p *Pool) Ping(ctx context.Context) error {
	return p.Do(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, "SELECT 1")
		return err
	})
}

// Close closes the pool's connections, waiting for those in use.
func (p *Pool) Close() { p.pool.Close() }

// IsUniqueViolation tells whether err is a unique-constraint violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// IsCheckViolation tells whether err is a check-constraint violation.
func IsCheckViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514"
}
