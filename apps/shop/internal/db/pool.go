// Package db is a small connection pool over pgx.Conn.
//
// pgxpool would be the usual choice, but its dependency (jackc/puddle) is not
// in the repository's go.mod, which is shared and must not be edited from
// here. The pool keeps what the services need from pgxpool: a bounded number
// of connections, reuse of healthy ones, and transparent reconnection after
// the database restarts (a broken connection is dropped, the next request
// dials a new one).
package db

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what both a connection and a transaction offer.
type Querier interface {
	Exec(ctx context.Context, sql string, arguments ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// idleCheckAfter is how long a connection may sit idle before it is pinged on
// acquire; a database restart in between would otherwise surface as a failed
// request. Under load connections are reused sooner, so they skip the ping.
const idleCheckAfter = 250 * time.Millisecond

type idleConn struct {
	conn  *pgx.Conn
	since time.Time
}

// Pool hands out at most maxConns connections at a time.
type Pool struct {
	config *pgx.ConnConfig
	slots  chan struct{}

	mu     sync.Mutex
	idle   []idleConn
	closed bool
}

// ErrClosed is returned by a pool after Close.
var ErrClosed = errors.New("database pool is closed")

// UnavailableError says the database could not be reached or the connection
// broke: a state that passes once the database is back.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "database unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Temporary marks the error as one a client may retry.
func (e *UnavailableError) Temporary() bool { return true }

// New parses the connection URL; it does not connect, so a service can start
// before its database answers.
func New(databaseURL string, maxConns int) (*Pool, error) {
	if databaseURL == "" {
		return nil, errors.New("DATABASE_URL is empty: set it to e.g. postgres://shop:secret@product-db:5432/products?sslmode=disable")
	}
	config, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	if config.ConnectTimeout == 0 {
		config.ConnectTimeout = 5 * time.Second
	}
	if maxConns < 1 {
		maxConns = 1
	}
	return &Pool{config: config, slots: make(chan struct{}, maxConns)}, nil
}

func (p *Pool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a database connection: %w", ctx.Err())
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			<-p.slots
			return nil, ErrClosed
		}
		var candidate idleConn
		found := len(p.idle) > 0
		if found {
			candidate = p.idle[len(p.idle)-1]
			p.idle = p.idle[:len(p.idle)-1]
		}
		p.mu.Unlock()

		if !found {
			conn, err := pgx.ConnectConfig(ctx, p.config)
			if err != nil {
				<-p.slots
				return nil, &UnavailableError{Err: fmt.Errorf("connecting to %s:%d: %w", p.config.Host, p.config.Port, err)}
			}
			return conn, nil
		}
		if candidate.conn.IsClosed() {
			continue
		}
		if time.Since(candidate.since) > idleCheckAfter {
			if err := candidate.conn.Ping(ctx); err != nil {
				closeQuietly(candidate.conn)
				continue
			}
		}
		return candidate.conn, nil
	}
}

func (p *Pool) release(conn *pgx.Conn) {
	defer func() { <-p.slots }()
	broken := conn.IsClosed()
	reusable := !broken && !conn.PgConn().IsBusy() && conn.PgConn().TxStatus() == 'I'
	p.mu.Lock()
	if broken {
		// One dead connection usually means the server restarted: check
		// every idle one before it is used again.
		for i := range p.idle {
			p.idle[i].since = time.Time{}
		}
	}
	if reusable && !p.closed {
		p.idle = append(p.idle, idleConn{conn: conn, since: time.Now()})
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	closeQuietly(conn)
}

func closeQuietly(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// Do runs fn with one connection.
func (p *Pool) Do(ctx context.Context, fn func(Querier) error) error {
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer p.release(conn)
	err = fn(conn)
	if err != nil && conn.IsClosed() {
		return &UnavailableError{Err: err}
	}
	return err
}

// Tx runs fn in a transaction, committed when fn returns nil and rolled back
// otherwise.
func (p *Pool) Tx(ctx context.Context, fn func(Querier) error) error {
	return p.Do(ctx, func(q Querier) error {
		conn := q.(*pgx.Conn)
		tx, err := conn.Begin(ctx)
		if err != nil {
			return fmt.Errorf("beginning transaction: %w", err)
		}
		if err := fn(tx); err != nil {
			rollbackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = tx.Rollback(rollbackCtx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("committing transaction: %w", err)
		}
		return nil
	})
}

// Ping checks that the database answers.
func (p *Pool) Ping(ctx context.Context) error {
	return p.Do(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, "SELECT 1")
		return err
	})
}

// Close closes idle connections; connections in use are closed on release.
func (p *Pool) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	p.mu.Unlock()
	for _, c := range idle {
		closeQuietly(c.conn)
	}
}

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
