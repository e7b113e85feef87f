package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects log output written from server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startHello(t *testing.T, name string) (*httptest.Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	srv := httptest.NewServer(newService(name, slog.New(slog.NewTextHandler(logs, nil))).handler())
	t.Cleanup(srv.Close)
	return srv, logs
}

func getJSON(t *testing.T, rawURL string, wantStatus int) map[string]any {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d", rawURL, resp.StatusCode, wantStatus)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: content type %q, want application/json", rawURL, ct)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET %s: decoding JSON: %v", rawURL, err)
	}
	return out
}

func TestHealth(t *testing.T) {
	srv, logs := startHello(t, "web")
	got := getJSON(t, srv.URL+"/health", http.StatusOK)
	if got["status"] != "ok" || got["service"] != "web" {
		t.Errorf("/health = %v, want status ok and service web", got)
	}
	if !strings.Contains(logs.String(), "path=/health status=200") {
		t.Errorf("no access log line for /health in %q", logs.String())
	}
}

func TestInfo(t *testing.T) {
	srv, _ := startHello(t, "web")
	got := getJSON(t, srv.URL+"/", http.StatusOK)
	hostname, _ := os.Hostname()
	if got["service"] != "web" || got["hostname"] != hostname {
		t.Errorf("/ = %v, want service web and hostname %s", got, hostname)
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(got["time"])); err != nil {
		t.Errorf("/ time %v: %v", got["time"], err)
	}
	addrs, ok := got["addrs"].([]any)
	if !ok {
		t.Fatalf("/ addrs = %#v, want a list", got["addrs"])
	}
	for _, a := range addrs {
		if ip := net.ParseIP(fmt.Sprint(a)); ip == nil || ip.To4() == nil || ip.IsLoopback() {
			t.Errorf("/ addrs has %v, want only non-loopback IPv4", a)
		}
	}
	resp, err := http.Get(srv.URL + "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nothing-here: status %d, want 404", resp.StatusCode)
	}
}

func TestCall(t *testing.T) {
	callee, _ := startHello(t, "db")
	caller, _ := startHello(t, "web")
	calleeHost := strings.TrimPrefix(callee.URL, "http://")

	got := getJSON(t, caller.URL+"/call?"+url.Values{"target": {calleeHost}, "path": {"/health"}}.Encode(), http.StatusOK)
	if got["from"] != "web" || got["to"] != callee.URL+"/health" || got["status"] != float64(200) {
		t.Errorf("/call = %v, want from web, to %s/health, status 200", got, callee.URL)
	}
	body, ok := got["body"].(map[string]any)
	if !ok || body["service"] != "db" {
		t.Errorf("/call body = %#v, want the callee's decoded JSON naming db", got["body"])
	}

	// A text reply is relayed as text.
	text := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "plain words") }))
	t.Cleanup(text.Close)
	got = getJSON(t, caller.URL+"/call?target="+strings.TrimPrefix(text.URL, "http://"), http.StatusOK)
	if got["body"] != "plain words" {
		t.Errorf("/call text body = %#v, want \"plain words\"", got["body"])
	}

	// Bad input names the parameter.
	got = getJSON(t, caller.URL+"/call", http.StatusBadRequest)
	if !strings.Contains(fmt.Sprint(got["error"]), "target") {
		t.Errorf("/call without target: %v, want an error naming target", got)
	}

	// An unreachable target is a 502 that says why.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	got = getJSON(t, caller.URL+"/call?target="+deadAddr, http.StatusBadGateway)
	if !strings.Contains(fmt.Sprint(got["error"]), "refused") {
		t.Errorf("/call to a closed port: %v, want an error saying connection refused", got)
	}
}

func TestEcho(t *testing.T) {
	srv, _ := startHello(t, "web")
	payload := make([]byte, 3<<20)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, err := http.NewRequest(method, srv.URL+"/echo", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s /echo: %v", method, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s /echo: reading: %v", method, err)
		}
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, payload) {
			t.Errorf("%s /echo: status %d, %d bytes back, equal=%v; want 200 and the same %d bytes",
				method, resp.StatusCode, len(got), bytes.Equal(got, payload), len(payload))
		}
	}
}

func TestBlob(t *testing.T) {
	srv, _ := startHello(t, "web")
	for _, size := range []int{0, 1, 250, 251, 252, 1500, 1 << 20} {
		resp, err := http.Get(fmt.Sprintf("%s/blob?size=%d", srv.URL, size))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != size || resp.ContentLength != int64(size) {
			t.Fatalf("size=%d: got %d bytes, Content-Length %d", size, len(got), resp.ContentLength)
		}
		for i, b := range got {
			if b != byte(i%251) {
				t.Fatalf("size=%d: byte %d is %d, want %d", size, i, b, i%251)
			}
		}
	}
	for _, bad := range []string{"", "-1", "abc", "9999999999999"} {
		got := getJSON(t, srv.URL+"/blob?size="+bad, http.StatusBadRequest)
		if !strings.Contains(fmt.Sprint(got["error"]), "size") {
			t.Errorf("size=%q: %v, want an error naming size", bad, got)
		}
	}
}

// TestGracefulShutdown runs the real main in a child process and checks that
// SIGTERM stops it cleanly after an in-flight request completes.
func TestGracefulShutdown(t *testing.T) {
	if os.Getenv("HELLO_TEST_MAIN") == "1" {
		os.Args = []string{"hello", "-listen", "127.0.0.1:0", "-name", "graceful"}
		main()
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGracefulShutdown$")
	cmd.Env = append(os.Environ(), "HELLO_TEST_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	lines := make(chan string, 100)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
	}()
	var addr string
	for addr == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("child exited before listening")
			}
			if _, after, found := strings.Cut(line, "listen="); found {
				addr = strings.Fields(after)[0]
			}
		case <-time.After(5 * time.Second):
			t.Fatal("child did not log its listen address within 5s")
		}
	}

	// A slow in-flight download must finish despite SIGTERM.
	resp, err := http.Get("http://" + addr + "/blob?size=" + fmt.Sprint(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != 64<<20 {
		t.Errorf("in-flight download during shutdown: %d bytes, err %v; want all %d", n, err, 64<<20)
	}

	exited := make(chan error, 1)
	go func() {
		for range lines { // drain so the child never blocks on stdout
		}
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("child exit after SIGTERM: %v, want clean exit", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("child still running 10s after SIGTERM")
	}
}

func TestBehaviour(t *testing.T) {
	srv := httptest.NewServer(newService("web", slog.New(slog.DiscardHandler)).with(behaviour{version: "v2", failEvery: 5, delay: 20 * time.Millisecond}).handler())
	t.Cleanup(srv.Close)
	failed := 0
	for i := 1; i <= 10; i++ {
		start := time.Now()
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if time.Since(start) < 20*time.Millisecond {
			t.Errorf("request %d answered before -delay", i)
		}
		if resp.Header.Get("X-Version") != "v2" {
			t.Errorf("request %d: X-Version %q, want v2", i, resp.Header.Get("X-Version"))
		}
		if resp.StatusCode == http.StatusInternalServerError {
			failed++
			if i%5 != 0 {
				t.Errorf("request %d failed; want only every 5th", i)
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d of 10 failed, want 2", failed)
	}
	if got := getJSON(t, srv.URL+"/", http.StatusOK)["version"]; got != "v2" {
		t.Errorf("version %v, want v2", got)
	}
	getJSON(t, srv.URL+"/health", http.StatusOK)
}
