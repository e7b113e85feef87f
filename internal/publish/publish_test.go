package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newNetns creates a named namespace with only its loopback up; it is
// deleted when the test ends, also on failure.
func newNetns(t *testing.T, suffix string) string {
	t.Helper()
	var rnd [3]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("weftpub-%d-%s-%s", os.Getpid(), hex.EncodeToString(rnd[:]), suffix)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// serveIn starts an HTTP server answering its name, listening on addr inside
// the namespace; the listening socket is created on a thread switched into it.
func serveIn(t *testing.T, nsName string, addr netip.AddrPort, answer string) *http.Server {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{err: err}
			return // thread stays locked and dies with the goroutine
		}
		target, err := netns.GetFromName(nsName)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp", addr.String())
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{ln, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, nsName, r.err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, answer) })}
	go srv.Serve(r.ln)
	t.Cleanup(func() { srv.Close() })
	return srv
}

func rootRoutes(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route: %v\n%s", err, out)
	}
	return string(out)
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type client struct {
	url  string
	http *http.Client
}

// fetch makes one request on a fresh connection, so every request is a new
// forwarded connection and a new backend choice.
func (c client) fetch() (string, error) {
	resp, err := c.http.Get(c.url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func (c client) fetchN(t *testing.T, n int) (map[string]int, int) {
	t.Helper()
	seen := map[string]int{}
	failed := 0
	for range n {
		body, err := c.fetch()
		if err != nil {
			failed++
			continue
		}
		seen[body]++
	}
	return seen, failed
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPublishForwardsIntoNamespacesAndSurvivesLoss(t *testing.T) {
	requireRoot(t)
	routesBefore := rootRoutes(t)
	nsA, nsB := newNetns(t, "a"), newNetns(t, "b")

	// The same address in both namespaces, and nothing on it in the root
	// namespace: an answer proves the connection was opened inside one.
	backendAddr := netip.MustParseAddrPort(freeLoopbackAddr(t))
	if conn, err := net.DialTimeout("tcp", backendAddr.String(), time.Second); err == nil {
		conn.Close()
		t.Fatalf("something listens on %s in the root namespace", backendAddr)
	}
	srvA := serveIn(t, nsA, backendAddr, "from-a")
	serveIn(t, nsB, backendAddr, "from-b")

	a := Backend{Name: "gw-a", Addr: backendAddr, Netns: nsA}
	b := Backend{Name: "gw-b", Addr: backendAddr, Netns: nsB}
	listen := freeLoopbackAddr(t)
	const interval = 100 * time.Millisecond
	pub, err := New(Config{Listen: listen, Backends: []Backend{a}, CheckInterval: interval}, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	stopped := make(chan struct{})
	go func() { runErr = pub.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })

	c := client{url: "http://" + listen + "/", http: &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   5 * time.Second,
	}}
	eventually(t, 5*time.Second, "the publisher to serve", func() bool { _, err := c.fetch(); return err == nil })

	if seen, failed := c.fetchN(t, 10); failed != 0 || seen["from-a"] != 10 {
		t.Fatalf("with backend a only: %v, %d failed; want 10 from a", seen, failed)
	}

	pub.SetBackends([]Backend{a, b})
	if seen, failed := c.fetchN(t, 20); failed != 0 || seen["from-a"] != 10 || seen["from-b"] != 10 {
		t.Fatalf("after adding b: %v, %d failed; want 10 from each", seen, failed)
	}
	if got := pub.Healthy(); !slices.Equal(got, []string{"gw-a", "gw-b"}) {
		t.Errorf("Healthy() = %v; want [gw-a gw-b]", got)
	}

	// One gateway stops: its connections are refused, the next backend is
	// tried at once, and the check marks it down.
	srvA.Close()
	failedDuringSwitch := 0
	for deadline := time.Now().Add(3 * interval); time.Now().Before(deadline); {
		if _, err := c.fetch(); err != nil {
			failedDuringSwitch++
		}
	}
	if failedDuringSwitch > 2 {
		t.Errorf("%d requests failed while gw-a went away; want at most 2", failedDuringSwitch)
	}
	eventually(t, 10*interval, "gw-a to be marked down", func() bool { return slices.Equal(pub.Healthy(), []string{"gw-b"}) })
	if seen, failed := c.fetchN(t, 10); failed != 0 || seen["from-b"] != 10 {
		t.Fatalf("with gw-a down: %v, %d failed; want all 10 from b", seen, failed)
	}

	// It comes back: a check finds it and traffic is shared again.
	serveIn(t, nsA, backendAddr, "from-a")
	eventually(t, 10*interval, "gw-a to be marked up", func() bool { return len(pub.Healthy()) == 2 })
	if seen, failed := c.fetchN(t, 20); failed != 0 || seen["from-a"] != 10 || seen["from-b"] != 10 {
		t.Fatalf("after gw-a returned: %v, %d failed; want 10 from each", seen, failed)
	}

	// b's whole host namespace disappears.
	run(t, "ip", "netns", "del", nsB)
	failedDuringSwitch = 0
	for deadline := time.Now().Add(3 * interval); time.Now().Before(deadline); {
		if _, err := c.fetch(); err != nil {
			failedDuringSwitch++
		}
	}
	if failedDuringSwitch > 2 {
		t.Errorf("%d requests failed while netns %s went away; want at most 2", failedDuringSwitch, nsB)
	}
	eventually(t, 10*interval, "gw-b to be marked down", func() bool { return slices.Equal(pub.Healthy(), []string{"gw-a"}) })
	if seen, failed := c.fetchN(t, 10); failed != 0 || seen["from-a"] != 10 {
		t.Fatalf("with netns b gone: %v, %d failed; want all 10 from a", seen, failed)
	}

	cancel()
	select {
	case <-stopped:
		if runErr != nil {
			t.Errorf("Run after cancel = %v; want nil", runErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := c.fetch(); err == nil {
		t.Error("still forwarding after Run returned")
	}
	if after := rootRoutes(t); after != routesBefore {
		t.Errorf("the root namespace's routes changed:\nbefore:\n%s\nafter:\n%s", routesBefore, after)
	}
	threadsStayInRootNetns(t)
}

// threadsStayInRootNetns checks that no OS thread the runtime hands out was
// left inside a lab namespace by a dial.
func threadsStayInRootNetns(t *testing.T) {
	t.Helper()
	root, err := netns.GetFromPid(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var strays int
	for range 64 {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			current, err := netns.Get()
			if err != nil {
				return
			}
			defer current.Close()
			if !current.Equal(root) {
				mu.Lock()
				strays++
				mu.Unlock()
			}
			time.Sleep(time.Millisecond)
		})
	}
	wg.Wait()
	if strays > 0 {
		t.Errorf("%d of 64 threads were in another network namespace", strays)
	}
}

func TestHalfCloseIsPassedOn(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t, "h")
	backendAddr := netip.MustParseAddrPort(freeLoopbackAddr(t))
	// A backend that reads until the client's half-close, then answers with
	// what it read: it only answers if the EOF was forwarded.
	lnCh := make(chan net.Listener, 1)
	go func() {
		runtime.LockOSThread()
		orig, _ := netns.Get()
		target, err := netns.GetFromName(ns)
		if err != nil {
			lnCh <- nil
			return
		}
		netns.Set(target)
		ln, _ := net.Listen("tcp", backendAddr.String())
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		target.Close()
		lnCh <- ln
	}()
	ln := <-lnCh
	if ln == nil {
		t.Fatal("could not listen inside the namespace")
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				got, _ := io.ReadAll(conn)
				conn.Write(append([]byte("echo:"), got...))
			}()
		}
	}()

	listen := freeLoopbackAddr(t)
	pub, err := New(Config{Listen: listen, Backends: []Backend{{Name: "echo", Addr: backendAddr, Netns: ns}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { pub.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })

	var conn net.Conn
	eventually(t, 5*time.Second, "the publisher to listen", func() bool {
		conn, err = net.Dial("tcp", listen)
		return err == nil
	})
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "hello")
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "echo:hello" {
		t.Errorf("after half-close got %q, %v; want echo:hello", got, err)
	}
}

func TestNewRejectsNonLoopbackAndBadBackends(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:8080", ":8080", "192.168.1.10:80", "8080"} {
		if _, err := New(Config{Listen: listen}, nil); err == nil || !strings.Contains(err.Error(), "listen") {
			t.Errorf("listen %q accepted or not named: %v", listen, err)
		}
	}
	for _, listen := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080"} {
		if _, err := New(Config{Listen: listen}, nil); err != nil {
			t.Errorf("listen %q refused: %v", listen, err)
		}
	}
	_, err := New(Config{Listen: "127.0.0.1:8080", Backends: []Backend{
		{Name: "a", Addr: netip.MustParseAddrPort("10.10.0.100:80"), Netns: "weft.c.h.host1"},
		{Name: "a", Netns: "../x"},
	}}, nil)
	if err == nil {
		t.Fatal("bad backends accepted")
	}
	for _, want := range []string{"backends[1].name", "backends[1].addr", "backends[1].netns"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// A single backend (a VIP) that refuses for a moment (its gateway
// restarting, or the VIP moving): the accepted connection waits for it
// instead of failing.
func TestPublishRedialsWhileTheOnlyBackendRefuses(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t, "v")
	backendAddr := netip.MustParseAddrPort(freeLoopbackAddr(t))
	listen := freeLoopbackAddr(t)
	pub, err := New(Config{Listen: listen, Backends: []Backend{{Name: "vip", Addr: backendAddr, Netns: ns}}, CheckInterval: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = pub.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	c := client{url: "http://" + listen + "/", http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}}
	eventually(t, 5*time.Second, "the publisher to listen", func() bool {
		conn, err := net.Dial("tcp", listen)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	// Nothing listens yet: the request is accepted and waits.
	answered := make(chan error, 1)
	go func() {
		body, err := c.fetch()
		if err == nil && body != "from-vip" {
			err = fmt.Errorf("answer %q", body)
		}
		answered <- err
	}()
	time.Sleep(300 * time.Millisecond) // the backend is away for this long, on purpose
	serveIn(t, ns, backendAddr, "from-vip")
	if err := <-answered; err != nil {
		t.Fatalf("request while the only backend refused for 300ms: %v", err)
	}
}
