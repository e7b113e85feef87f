// Command hello is the example service of the example cluster: a small HTTP
// server that reports where it runs, calls other services by name (through
// the container's resolver) and serves bulk data for MTU and integrity tests.
//
// Routes:
//
//	GET /health                         {"status":"ok","service":NAME}
//	GET /                               {service, version, hostname, addrs, time}
//	GET /call?target=web:8080&path=/    GET http://web:8080/ and report {from, to, status, body}
//	GET /echo                           the request body, streamed back
//	GET /blob?size=N                    N bytes where byte i is i mod 251
//
// It logs one line per request to stdout and shuts down gracefully on SIGTERM.
//
// For traffic-shifting demos and tests, GET / can carry a version (-version,
// also in the X-Version header), take -delay longer, and answer 500 to one
// request in -fail-every; /health stays healthy whatever they say.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// blobPeriod is prime so the pattern never lines up with packet or page
// sizes: a lost, duplicated or reordered segment shows as a mismatch.
const blobPeriod = 251

// maxBlobSize bounds /blob so a typo cannot stream forever.
const maxBlobSize = 1 << 30

// callTimeout bounds /call's outbound request.
const callTimeout = 5 * time.Second

// maxCallBody bounds how much of the called service's reply is relayed.
const maxCallBody = 1 << 20

func main() {
	listen := flag.String("listen", ":8080", "address to serve HTTP on")
	name := flag.String("name", "hello", "service name reported in replies")
	var b behaviour
	flag.StringVar(&b.version, "version", "", "version reported by GET / (field version, header X-Version)")
	flag.DurationVar(&b.delay, "delay", 0, "how long GET / waits before answering")
	flag.Uint64Var(&b.failEvery, "fail-every", 0, "answer 500 to every Nth GET / (0: never)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	if err := run(*listen, *name, b, log); err != nil {
		log.Error("hello stopped", "err", err)
		os.Exit(1)
	}
}

func run(listen, name string, b behaviour, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	srv := &http.Server{
		Addr:              listen,
		Handler:           newService(name, log).with(b).handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	listener, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s (change -listen): %w", listen, err)
	}
	log.Info("hello listening", "service", name, "listen", listener.Addr().String())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(listener) }()

	select {
	case err := <-served:
		return fmt.Errorf("serving HTTP on %s: %w", listen, err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "service", name)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down HTTP server: %w", err)
	}
	return nil
}

type service struct {
	name   string
	log    *slog.Logger
	client *http.Client
	behaviour
	served atomic.Uint64 // GET / requests, for failEvery
}

// behaviour is how GET / answers: the version it reports, a delay, and a
// share of 500s.
type behaviour struct {
	version   string
	delay     time.Duration
	failEvery uint64
}

func (s *service) with(b behaviour) *service {
	s.behaviour = b
	return s
}

func newService(name string, log *slog.Logger) *service {
	return &service{
		name: name,
		log:  log,
		client: &http.Client{
			Timeout: callTimeout,
			// No proxy from the environment: calls stay on the overlay.
			Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
		},
	}
}

func (s *service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /{$}", s.info)
	mux.HandleFunc("GET /call", s.call)
	mux.HandleFunc("/echo", s.echo) // any method: big uploads are usually POST
	mux.HandleFunc("GET /blob", s.blob)
	return s.logRequests(mux)
}

func (s *service) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": s.name})
}

type infoReply struct {
	Service  string   `json:"service"`
	Version  string   `json:"version,omitempty"`
	Hostname string   `json:"hostname"`
	Addrs    []string `json:"addrs"`
	Time     string   `json:"time"`
}

func (s *service) info(w http.ResponseWriter, r *http.Request) {
	if s.delay > 0 {
		t := time.NewTimer(s.delay)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	if s.version != "" {
		w.Header().Set("X-Version", s.version)
	}
	if n := s.served.Add(1); s.failEvery > 0 && n%s.failEvery == 0 {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": fmt.Sprintf("request %d: failing one in %d (-fail-every)", n, s.failEvery)})
		return
	}
	hostname, _ := os.Hostname()
	writeJSON(w, http.StatusOK, infoReply{
		Service:  s.name,
		Version:  s.version,
		Hostname: hostname,
		Addrs:    ipv4Addrs(),
		Time:     time.Now().UTC().Format(time.RFC3339Nano),
	})
}

// ipv4Addrs lists the non-loopback IPv4 addresses of this network namespace
// (in a container: its overlay address).
func ipv4Addrs() []string {
	out := []string{}
	ifaceAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range ifaceAddrs {
		prefix, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		if addr := prefix.Addr(); addr.Is4() && !addr.IsLoopback() {
			out = append(out, addr.String())
		}
	}
	return out
}

type callReply struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Status int    `json:"status,omitempty"`
	Body   any    `json:"body,omitempty"`
	Error  string `json:"error,omitempty"`
}

// call fetches http://<target><path> by name, so one request shows a
// cross-host call through the overlay and the resolver.
func (s *service) call(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("target")
	path := r.URL.Query().Get("path")
	if path == "" {
		path = "/"
	}
	reply := callReply{From: s.name, To: target}
	if target == "" || strings.ContainsAny(target, "/?#@") {
		reply.Error = "query parameter target must be host:port, e.g. target=web:8080"
		writeJSON(w, http.StatusBadRequest, reply)
		return
	}
	if !strings.HasPrefix(path, "/") {
		reply.Error = "query parameter path must start with /, e.g. path=/health"
		writeJSON(w, http.StatusBadRequest, reply)
		return
	}
	targetURL := "http://" + target + path
	reply.To = targetURL
	if _, err := url.Parse(targetURL); err != nil {
		reply.Error = fmt.Sprintf("bad target or path: %v", err)
		writeJSON(w, http.StatusBadRequest, reply)
		return
	}

	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, targetURL, nil)
	if err != nil {
		reply.Error = fmt.Sprintf("building request: %v", err)
		writeJSON(w, http.StatusBadRequest, reply)
		return
	}
	resp, err := s.client.Do(req)
	if err != nil {
		reply.Error = err.Error()
		writeJSON(w, http.StatusBadGateway, reply)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCallBody))
	if err != nil {
		reply.Error = fmt.Sprintf("reading reply of %s: %v", targetURL, err)
		writeJSON(w, http.StatusBadGateway, reply)
		return
	}
	reply.Status = resp.StatusCode
	reply.Body = decodeBody(body)
	writeJSON(w, http.StatusOK, reply)
}

// decodeBody returns the body as JSON when it is JSON, else as text.
func decodeBody(body []byte) any {
	var decoded any
	if json.Unmarshal(body, &decoded) == nil {
		return decoded
	}
	return string(body)
}

func (s *service) echo(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	if r.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	// Reading and writing at once needs full duplex on HTTP/1.
	_ = http.NewResponseController(w).EnableFullDuplex()
	if _, err := io.Copy(w, r.Body); err != nil {
		s.log.Warn("echo interrupted", "err", err)
	}
}

func (s *service) blob(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
	if err != nil || size < 0 || size > maxBlobSize {
		writeJSON(w, http.StatusBadRequest, map[string]string{
			"error": fmt.Sprintf("query parameter size must be a byte count from 0 to %d, e.g. size=1048576", maxBlobSize),
		})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	if _, err := io.CopyN(w, &blobReader{}, size); err != nil {
		s.log.Warn("blob interrupted", "size", size, "err", err)
	}
}

// blobReader yields the endless pattern byte i = i mod blobPeriod.
type blobReader struct{ offset int64 }

func (b *blobReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte((b.offset + int64(i)) % blobPeriod)
	}
	b.offset += int64(len(p))
	return len(p), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// statusRecorder remembers the status and size of a reply for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (full duplex, flush).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *service) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		begin := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.log.Info("request", "method", r.Method, "path", r.URL.RequestURI(), "status", rec.status,
			"bytes", rec.bytes, "remote", r.RemoteAddr, "duration", time.Since(begin).Round(time.Microsecond))
	})
}
