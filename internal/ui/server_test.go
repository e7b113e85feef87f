package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// fakeSource is a Source whose status the test sets.
type fakeSource struct {
	mu        sync.Mutex
	st        api.Status
	err       error
	restarted []string // host/container
	shifts    api.ShiftsAnswer
	logs      string
}

func (f *fakeSource) set(st api.Status, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st, f.err = st, err
}

func (f *fakeSource) Status(context.Context) (api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, f.err
}

func (f *fakeSource) Spec(context.Context) (*spec.Cluster, error) {
	return &spec.Cluster{Routes: []spec.Route{{Prefix: "/", Backends: []spec.RouteBackend{{Service: "web", Weight: 90}, {Service: "web2", Weight: 10}}}}}, nil
}

func (f *fakeSource) Shifts(context.Context) (api.ShiftsAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shifts, nil
}

func (f *fakeSource) Restart(_ context.Context, host, container string) (api.RestartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarted = append(f.restarted, host+"/"+container)
	return api.RestartResult{Container: container, Host: host}, nil
}

func (f *fakeSource) Logs(_ context.Context, host, container string, _ bool, w io.Writer) error {
	_, err := fmt.Fprintf(w, "%s of %s on %s\n", f.logs, container, host)
	return err
}

func twoHosts() api.Status {
	return api.Status{
		Cluster:    "c1",
		Hosts:      []api.HostStatus{{Name: "host1", Address: "192.168.1.10", Agent: "up"}, {Name: "host2", Address: "192.168.2.10", Agent: "up"}},
		Containers: []model.ContainerStatus{ct("web-1", "host1", "running", 0), ct("web-2", "host2", "running", 0)},
	}
}

// startServer serves a Server on a loopback port; the poller is stepped
// by the test (no background polling), so every change is the test's.
func startServer(t *testing.T, src Source) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Source: src}, ln.Addr().String())
	srv := &http.Server{Handler: s.Handler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s, "http://" + ln.Addr().String()
}

// sseReader reads views from an event stream.
type sseReader struct {
	views chan View
}

func openEvents(t *testing.T, base string) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events Content-Type %q", ct)
	}
	r := &sseReader{views: make(chan View, 16)}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "view":
				var v View
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &v); err == nil {
					r.views <- v
				}
			}
		}
	}()
	return r
}

func (r *sseReader) next(t *testing.T) View {
	t.Helper()
	select {
	case v := <-r.views:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no view on the event stream within 5s")
		return View{}
	}
}

func (r *sseReader) none(t *testing.T) {
	t.Helper()
	select {
	case v := <-r.views:
		t.Fatalf("a view was pushed without a change: %+v", v)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestEventsPushOnlyChanges(t *testing.T) {
	src := &fakeSource{}
	src.set(twoHosts(), nil)
	s, base := startServer(t, src)
	if !s.poll.step(context.Background()) {
		t.Fatal("the first status was not published")
	}
	ev := openEvents(t, base)
	v := ev.next(t)
	if len(v.Hosts) != 2 || len(v.Hosts[0].Containers) != 1 || v.Routes[0].Backends[0].Weight != 90 {
		t.Fatalf("first view: %+v", v)
	}

	// Same status: nothing is pushed.
	if s.poll.step(context.Background()) {
		t.Fatal("an unchanged status was published again")
	}
	ev.none(t)

	// host2 goes down and web-2 is killed: one view with both, and events.
	st := twoHosts()
	st.Hosts[1].Agent = "down"
	st.Containers[1].State = "exited"
	src.set(st, nil)
	if !s.poll.step(context.Background()) {
		t.Fatal("a changed status was not published")
	}
	v = ev.next(t)
	if !v.Hosts[1].Down || v.Hosts[1].Containers[0].State != "exited" {
		t.Fatalf("view after the change: %+v", v.Hosts)
	}
	if len(v.Events) != 2 || v.Events[0].Subject != "web-2" || v.Events[1].Subject != "host2" {
		t.Fatalf("events, newest first: %+v", v.Events)
	}

	// No status at all: the last view stays, with the reason.
	src.set(api.Status{}, fmt.Errorf("no agent of cluster c1 answers"))
	s.poll.step(context.Background())
	v = ev.next(t)
	if !strings.Contains(v.Error, "no agent of cluster c1 answers") || len(v.Hosts) != 2 {
		t.Fatalf("view without a status: error %q, %d hosts", v.Error, len(v.Hosts))
	}
}

func TestPageIsEmbedded(t *testing.T) {
	src := &fakeSource{}
	_, base := startServer(t, src)
	for path, want := range map[string]string{"/": "<title>weft</title>", "/app.js": "new EventSource('/events')", "/style.css": ".host.down"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %s, body lacks %q", path, resp.Status, want)
		}
	}
}

func do(t *testing.T, method, url, host string, headers map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if host != "" {
		req.Host = host
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestActions(t *testing.T) {
	src := &fakeSource{logs: "hello"}
	src.set(twoHosts(), nil)
	s, base := startServer(t, src)
	s.poll.step(context.Background())
	hdr := map[string]string{ActionHeader: "1"}

	// Refused: no header (what a form or link of another site sends), and
	// a page of another name rebound to 127.0.0.1.
	if code, body := do(t, "POST", base+"/api/restart", "", nil, `{"container":"web-2"}`); code != http.StatusForbidden {
		t.Errorf("restart without %s: %d %s, want 403", ActionHeader, code, body)
	}
	if code, body := do(t, "POST", base+"/api/restart", "evil.example", hdr, `{"container":"web-2"}`); code != http.StatusForbidden {
		t.Errorf("restart with a foreign Host: %d %s, want 403", code, body)
	}
	if code, _ := do(t, "GET", base+"/", "evil.example", nil, ""); code != http.StatusForbidden {
		t.Errorf("page with a foreign Host: %d, want 403", code)
	}
	if code, _ := do(t, "GET", base+"/api/logs?container=web-1", "", nil, ""); code != http.StatusForbidden {
		t.Errorf("logs without %s: %d, want 403", ActionHeader, code)
	}
	if len(src.restarted) != 0 {
		t.Fatalf("a refused request restarted %v", src.restarted)
	}

	// Accepted: the container's host is the one in the status.
	code, body := do(t, "POST", base+"/api/restart", "", hdr, `{"container":"web-2"}`)
	if code != http.StatusOK || len(src.restarted) != 1 || src.restarted[0] != "host2/web-2" {
		t.Fatalf("restart web-2: %d %s, restarted %v", code, body, src.restarted)
	}
	if code, body := do(t, "POST", base+"/api/restart", "", hdr, `{"container":"nosuch-1"}`); code != http.StatusNotFound || !strings.Contains(body, "nosuch-1") {
		t.Errorf("restart of an unknown container: %d %s, want 404 naming it", code, body)
	}
	code, body = do(t, "GET", base+"/api/logs?container=web-1", "", hdr, "")
	if code != http.StatusOK || body != "hello of web-1 on host1\n" {
		t.Fatalf("logs of web-1: %d %q", code, body)
	}
}

func TestNoStatusYetNamesTheCluster(t *testing.T) {
	src := &fakeSource{}
	src.set(api.Status{}, fmt.Errorf("no agent of cluster c1 answers"))
	s := New(Config{Cluster: "c1", Source: src}, "127.0.0.1:1")
	if !s.poll.step(context.Background()) {
		t.Fatal("the first view was not published")
	}
	var v View
	if err := json.Unmarshal(s.hub.current(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Cluster != "c1" || !strings.Contains(v.Error, "no agent of cluster c1 answers") || len(v.Hosts) != 0 {
		t.Fatalf("view before any status: %+v", v)
	}
}

func TestClosedPageEndsItsSubscription(t *testing.T) {
	src := &fakeSource{}
	src.set(twoHosts(), nil)
	s, base := startServer(t, src)
	s.poll.step(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if n := s.hub.count(); n != 1 {
		t.Fatalf("%d subscriptions with one page open, want 1", n)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for s.hub.count() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions 5s after the page closed, want 0", s.hub.count())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
