// Package httpx holds what the four shop services share on the HTTP side:
// JSON responses and errors in the {"detail": ...} shape, request validation,
// middleware, and calls to the other services.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Error is an error with the HTTP status and the detail shown to the client.
type Error struct {
	Status int
	Detail string
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Detail) }

// Errorf builds an *Error.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Detail: fmt.Sprintf(format, args...)}
}

// HandlerFunc is an http handler that reports failure by returning an error:
// *Error and *ValidationError become their status, anything else a 500.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts a HandlerFunc, logging unexpected errors with log.
func Handle(log *slog.Logger, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var apiErr *Error
		var validationErr *ValidationError
		var temporary interface{ Temporary() bool }
		switch {
		case errors.As(err, &apiErr):
			WriteJSON(w, apiErr.Status, map[string]string{"detail": apiErr.Detail})
		case errors.As(err, &validationErr):
			WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": validationErr.Fields})
		case errors.As(err, &temporary) && temporary.Temporary():
			log.Warn("request failed for now", "method", r.Method, "path", r.URL.Path, "err", err)
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"detail": "Service temporarily unavailable, retry shortly: " + err.Error()})
		case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
			// The client went away; nobody reads the answer.
		default:
			log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			WriteJSON(w, http.StatusInternalServerError, map[string]string{"detail": "Internal server error"})
		}
	})
}

// WriteJSON writes v as a JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// NotFound answers every request no route matched.
func NotFound(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	s.status = status
	s.ResponseWriter.WriteHeader(status)
}

// Middleware wraps the service's routes: it makes "/x/" and "/x" the same
// route, recovers panics into 500s, and logs one JSON line per request.
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started := time.Now()
		if len(r.URL.Path) > 1 && strings.HasSuffix(r.URL.Path, "/") {
			r.URL.Path = strings.TrimRight(r.URL.Path, "/")
			if r.URL.Path == "" {
				r.URL.Path = "/"
			}
			r.URL.RawPath = ""
		}
		requestID := r.Header.Get("X-Request-ID")
		if requestID != "" {
			r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, requestID))
		}
		recorder := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
				WriteJSON(recorder, http.StatusInternalServerError, map[string]string{"detail": "Internal server error"})
			}
			log.Info("request",
				"method", r.Method,
				"path", r.URL.Path,
				"status", recorder.status,
				"duration_ms", float64(time.Since(started).Microseconds())/1000,
				"request_id", requestID,
			)
		}()
		next.ServeHTTP(recorder, r)
	})
}

type requestIDKey struct{}

// RequestID is the X-Request-ID of the request being served, if any, so calls
// to other services carry it on.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Serve runs handler on addr until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, log *slog.Logger, addr string, handler http.Handler) error {
	server := &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s (set PORT to a free port): %w", addr, err)
	}
	log.Info("listening", "addr", listener.Addr().String())
	errCh := make(chan error, 1)
	go func() { errCh <- server.Serve(listener) }()
	select {
	case err := <-errCh:
		return fmt.Errorf("serving HTTP on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down HTTP server: %w", err)
	}
	return nil
}
