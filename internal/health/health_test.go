package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func dur(d time.Duration) spec.Duration { return spec.Duration{Duration: d} }

// testServer serves /ok (200), /moved (302 to /broken), /broken (503) and
// /slow (blocks until the client gives up) on 127.0.0.1; it returns its port.
func testServer(t *testing.T) int {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/broken", http.StatusFound) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

func TestProbeHTTP(t *testing.T) {
	port := testServer(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cases := []struct {
		name        string
		h           spec.Health
		defaultPort int
		wantErr     string // "" means healthy
	}{
		{"2xx healthy", spec.Health{HTTP: "/ok"}, port, ""},
		{"3xx healthy and not followed", spec.Health{HTTP: "/moved"}, port, ""},
		{"5xx unhealthy", spec.Health{HTTP: "/broken"}, port, "GET " + base + "/broken: status 503"},
		{"404 unhealthy", spec.Health{HTTP: "/missing"}, port, "GET " + base + "/missing: status 404"},
		{"health port overrides default", spec.Health{HTTP: "/ok", Port: port}, 1, ""},
		{"no port", spec.Health{HTTP: "/ok"}, 0, "set health.port or the service's port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Probe(t.Context(), tc.h, loopback, tc.defaultPort, nil)
			checkErr(t, err, tc.wantErr)
		})
	}
}

func TestProbeHTTPTimeout(t *testing.T) {
	port := testServer(t)
	begin := time.Now()
	err := Probe(t.Context(), spec.Health{HTTP: "/slow", Timeout: dur(100 * time.Millisecond)}, loopback, port, nil)
	checkErr(t, err, fmt.Sprintf("GET http://127.0.0.1:%d/slow: timed out after 100ms", port))
	if elapsed := time.Since(begin); elapsed > 900*time.Millisecond {
		t.Errorf("probe took %s, want about the 100ms timeout", elapsed)
	}
}

func TestProbeHTTPRefused(t *testing.T) {
	port := closedPort(t)
	err := Probe(t.Context(), spec.Health{HTTP: "/health"}, loopback, port, nil)
	checkErr(t, err, fmt.Sprintf("GET http://127.0.0.1:%d/health: dial tcp 127.0.0.1:%d: connect: connection refused", port, port))
}

func TestProbeTCP(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	open := listener.Addr().(*net.TCPAddr).Port
	checkErr(t, Probe(t.Context(), spec.Health{TCP: open}, loopback, 0, nil), "")

	closed := closedPort(t)
	err = Probe(t.Context(), spec.Health{TCP: closed}, loopback, 0, nil)
	checkErr(t, err, fmt.Sprintf("connect 127.0.0.1:%d: connect: connection refused", closed))
}

func TestProbeExec(t *testing.T) {
	var gotArgv []string
	var hadDeadline bool
	execFn := func(ctx context.Context, argv []string) error {
		gotArgv = argv
		_, hadDeadline = ctx.Deadline()
		if argv[0] == "true" {
			return nil
		}
		return errors.New("exit status 1")
	}
	h := spec.Health{Exec: []string{"true", "--quiet"}}
	checkErr(t, Probe(t.Context(), h, loopback, 0, execFn), "")
	if !slices.Equal(gotArgv, h.Exec) || !hadDeadline {
		t.Errorf("execFn got argv %q deadline=%v, want %q with a deadline", gotArgv, hadDeadline, h.Exec)
	}

	err := Probe(t.Context(), spec.Health{Exec: []string{"pg_isready"}}, loopback, 0, execFn)
	checkErr(t, err, `exec ["pg_isready"]: exit status 1`)

	slow := func(ctx context.Context, _ []string) error { <-ctx.Done(); return ctx.Err() }
	err = Probe(t.Context(), spec.Health{Exec: []string{"sleep", "9"}, Timeout: dur(50 * time.Millisecond)}, loopback, 0, slow)
	checkErr(t, err, `exec ["sleep" "9"]: timed out after 50ms`)

	err = Probe(t.Context(), spec.Health{Exec: []string{"x"}}, loopback, 0, nil)
	checkErr(t, err, "no way to run commands")
}

func TestProbeWithoutCheck(t *testing.T) {
	checkErr(t, Probe(t.Context(), spec.Health{}, loopback, 80, nil), "set exactly one of them")
}

func TestTracker(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	fail := errors.New("status 503")
	type step struct {
		err         error
		at          time.Duration
		wantHealth  string
		wantChanged bool
	}
	cases := []struct {
		name  string
		h     spec.Health
		steps []step
	}{
		{"first success makes healthy", spec.Health{}, []step{
			{nil, 0, model.HealthHealthy, true},
			{nil, time.Second, model.HealthHealthy, false},
		}},
		{"default retries is three", spec.Health{}, []step{
			{fail, 0, model.HealthStarting, false},
			{fail, time.Second, model.HealthStarting, false},
			{fail, 2 * time.Second, model.HealthUnhealthy, true},
			{fail, 3 * time.Second, model.HealthUnhealthy, false},
			{nil, 4 * time.Second, model.HealthHealthy, true},
		}},
		{"failures must be consecutive", spec.Health{Retries: 2}, []step{
			{nil, 0, model.HealthHealthy, true},
			{fail, time.Second, model.HealthHealthy, false},
			{nil, 2 * time.Second, model.HealthHealthy, false},
			{fail, 3 * time.Second, model.HealthHealthy, false},
			{fail, 4 * time.Second, model.HealthUnhealthy, true},
		}},
		{"start period failures do not count", spec.Health{Retries: 1, StartPeriod: dur(5 * time.Second)}, []step{
			{fail, 0, model.HealthStarting, false},
			{fail, 4 * time.Second, model.HealthStarting, false},
			{fail, 5 * time.Second, model.HealthUnhealthy, true},
		}},
		{"success ends the start period", spec.Health{Retries: 1, StartPeriod: dur(time.Minute)}, []step{
			{nil, time.Second, model.HealthHealthy, true},
			{fail, 2 * time.Second, model.HealthUnhealthy, true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tracker := NewTracker(tc.h, start)
			for i, s := range tc.steps {
				health, changed := tracker.Observe(s.err, at(s.at))
				if health != s.wantHealth || changed != s.wantChanged {
					t.Fatalf("step %d (err=%v at %s): got %s changed=%v, want %s changed=%v", i, s.err, s.at, health, changed, s.wantHealth, s.wantChanged)
				}
			}
		})
	}
}

func TestTrackerReset(t *testing.T) {
	start := time.Now()
	tracker := NewTracker(spec.Health{Retries: 1, StartPeriod: dur(10 * time.Second)}, start)
	tracker.Observe(nil, start)
	if h, _ := tracker.Observe(errors.New("down"), start.Add(time.Second)); h != model.HealthUnhealthy {
		t.Fatalf("after failure: %s, want unhealthy", h)
	}
	restarted := start.Add(2 * time.Second)
	tracker.Reset(restarted)
	if tracker.Health() != model.HealthStarting {
		t.Fatalf("after Reset: %s, want starting", tracker.Health())
	}
	// The new start period applies again.
	if h, changed := tracker.Observe(errors.New("booting"), restarted.Add(time.Second)); h != model.HealthStarting || changed {
		t.Errorf("failure inside the new start period: %s changed=%v, want starting unchanged", h, changed)
	}
}

type change struct {
	health string
	err    error
}

func TestRunFirstProbeIsImmediate(t *testing.T) {
	port := testServer(t)
	changes := make(chan change, 10)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// An hour-long interval: only the immediate first probe can report.
		Run(ctx, spec.Health{HTTP: "/ok", Interval: dur(time.Hour)}, loopback, port, nil, time.Now(),
			func(h string, err error) { changes <- change{h, err} })
	}()
	select {
	case c := <-changes:
		if c.health != model.HealthHealthy || c.err != nil {
			t.Errorf("first change %+v, want healthy with no error", c)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no health change within 2s of Run")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunFollowsTheService(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	changes := make(chan change, 10)
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	h := spec.Health{HTTP: "/health", Interval: dur(20 * time.Millisecond), Retries: 2}
	go Run(ctx, h, loopback, port, nil, time.Now(), func(h string, err error) { changes <- change{h, err} })

	expect := func(want string) change {
		t.Helper()
		select {
		case c := <-changes:
			if c.health != want {
				t.Fatalf("change to %s (err %v), want %s", c.health, c.err, want)
			}
			return c
		case <-time.After(3 * time.Second):
			t.Fatalf("no change to %s within 3s", want)
			return change{}
		}
	}
	expect(model.HealthHealthy)
	failing.Store(true)
	c := expect(model.HealthUnhealthy)
	if c.err == nil || !strings.Contains(c.err.Error(), "status 500") {
		t.Errorf("unhealthy error %v, want one naming status 500", c.err)
	}
	failing.Store(false)
	expect(model.HealthHealthy)
}

func closedPort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := listener.Addr().(*net.TCPAddr).Port
	listener.Close()
	return port
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("got error %q, want healthy", err)
	case want != "" && err == nil:
		t.Errorf("got healthy, want error containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("got error %q, want one containing %q", err, want)
	}
}

// A service that is not ready at the first probe is found healthy soon after
// it is, not one whole interval later.
func TestRunProbesQuicklyUntilFirstSuccess(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	healthy := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go Run(ctx, spec.Health{HTTP: "/", Interval: dur(time.Hour), Retries: 10}, loopback, port, nil, time.Now(),
		func(h string, err error) {
			if h == model.HealthHealthy {
				close(healthy)
			}
		})
	select {
	case <-healthy:
		if n := calls.Load(); n != 4 {
			t.Fatalf("healthy after %d probes, want 4", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("not healthy after %d probes: the starting probes waited for the hour-long interval", calls.Load())
	}
}
