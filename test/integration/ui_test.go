package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/lab"
)

// uiTmpl: two hosts; web restarts as always, once does not (restart:
// never), so a kill leaves it exited.
const uiTmpl = twoHosts + `services:
  web:
    command: [HELLO, -listen, ":8080", -name, web]
    replicas: 2
    port: 8080
    stop_grace: 1s
    health: {http: /health, interval: 200ms}
  once:
    command: [HELLO, -listen, ":8080", -name, once]
    host: host2
    port: 8080
    restart: never
    health: {http: /health, interval: 200ms}
routes:
  - {prefix: /, service: web}
`

// drawn is what the page shows of the cluster, read from its DOM.
type drawn struct {
	Hosts      map[string]string            `json:"hosts"`      // host -> data-down
	Containers map[string]map[string]string `json:"containers"` // container -> state, pid, host
	Views      int                          `json:"views"`      // views received over SSE
	Marker     bool                         `json:"marker"`     // the page was not reloaded
	Live       string                       `json:"live"`
	Events     string                       `json:"events"`
	Text       string                       `json:"text"` // the start of the page's text, for failures
}

const readDOM = `(() => {
  if (document.readyState !== 'complete' || !document.getElementById('conn') || !document.getElementById('events'))
    return {hosts: {}, containers: {}, views: 0, marker: false, live: 'loading', events: '', text: location.href + ' ' + document.readyState};
  const out = {hosts: {}, containers: {}, views: Number(document.body.dataset.views || 0),
    marker: window.__uiTestMarker === 42, live: document.getElementById('conn').dataset.live,
    events: document.getElementById('events').innerText, text: document.body.innerText.slice(0, 400)};
  for (const h of document.querySelectorAll('[data-host]')) {
    out.hosts[h.dataset.host] = h.dataset.down;
    for (const c of h.querySelectorAll('[data-container]'))
      out.containers[c.dataset.container] = {state: c.dataset.state, pid: c.dataset.pid, host: h.dataset.host};
  }
  return out;
})()`

// TestUIInBrowser: headless Chromium opens weft ui's page of a running
// cluster; every host and container is drawn; a killed container's state
// changes on the same page (pushed over SSE) within 2 s; the logs button
// shows its output; the restart button and weft restart restart a
// container through its agent; a crashed host is drawn down. Screenshots
// are saved.
// The browser and the page server run in a namespace of their own that
// has nothing but lo: the browser can only talk to 127.0.0.1.
func TestUIInBrowser(t *testing.T) {
	c := writeCluster(t, uniqueName("ui"), uiTmpl)
	upCluster(t, c)
	st := c.status(t)

	ns := "ui-browser-" + c.name
	run(t, exec.Command("ip", "netns", "add", ns))
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("removing namespace %s: %v %s", ns, err, out)
		}
	})
	run(t, exec.Command("ip", "-n", ns, "link", "set", "lo", "up"))

	url := startUI(t, ns, c)
	b := startBrowser(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := b.open(ctx, url)
	if err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	read := func() drawn {
		t.Helper()
		var d drawn
		if err := p.eval(ctx, readDOM, &d); err != nil {
			t.Fatalf("reading the page: %v", err)
		}
		return d
	}

	// Every host and every container is drawn, each under its own host.
	var d drawn
	eventually(t, 20*time.Second, "every host and container drawn", func() error {
		d = read()
		for _, h := range st.Hosts {
			if down, ok := d.Hosts[h.Name]; !ok || down != "false" {
				return fmt.Errorf("host %s: drawn %v, down %q; page: %q", h.Name, ok, down, d.Text)
			}
		}
		for _, ct := range st.Containers {
			got, ok := d.Containers[ct.Container]
			if !ok || got["host"] != ct.Host || got["state"] != "running" {
				return fmt.Errorf("container %s (on %s): drawn %v", ct.Container, ct.Host, got)
			}
		}
		if len(d.Containers) != len(st.Containers) || len(d.Hosts) != len(st.Hosts) {
			return fmt.Errorf("drawn %d hosts and %d containers, the cluster has %d and %d", len(d.Hosts), len(d.Containers), len(st.Hosts), len(st.Containers))
		}
		return nil
	})
	if d.Live != "true" {
		t.Fatalf("the page's event stream is not open (live %q)", d.Live)
	}
	shot(t, p, ctx, "ui-up.png")

	// Kill once-1 (restart: never). The same page, not reloaded, shows it
	// exited within 2 s.
	if err := p.eval(ctx, "window.__uiTestMarker = 42", nil); err != nil {
		t.Fatal(err)
	}
	victim := find(t, st, "once-1")
	before := read().Views
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing once-1 (pid %d): %v", victim.Pid, err)
	}
	killed := time.Now()
	eventually(t, 2*time.Second, "once-1 drawn as no longer running", func() error {
		d = read()
		if s := d.Containers["once-1"]["state"]; s == "running" || s == "" {
			return fmt.Errorf("once-1 drawn %q", s)
		}
		return nil
	})
	t.Logf("page showed once-1 %s %s after the kill (%d views pushed meanwhile)", d.Containers["once-1"]["state"], time.Since(killed).Round(time.Millisecond), d.Views-before)
	if !d.Marker || d.Views <= before {
		t.Fatalf("the change did not come over the open event stream: marker %v, views %d -> %d", d.Marker, before, d.Views)
	}
	eventually(t, 5*time.Second, "the kill listed in the events", func() error {
		if ev := read().Events; !strings.Contains(ev, "once-1 running →") {
			return fmt.Errorf("events:\n%s", ev)
		}
		return nil
	})
	shot(t, p, ctx, "ui-killed.png")

	// The logs button opens once-1's output, read through its agent.
	if err := p.eval(ctx, `document.querySelector('[data-container="once-1"] [data-action="logs"]').click()`, nil); err != nil {
		t.Fatalf("clicking logs of once-1: %v", err)
	}
	eventually(t, 10*time.Second, "once-1's output in the logs panel", func() error {
		var text string
		if err := p.eval(ctx, `document.getElementById('logs').hidden ? '' : document.getElementById('logs-body').textContent`, &text); err != nil {
			return err
		}
		if !strings.Contains(text, "hello listening") || !strings.Contains(text, "service=once") {
			return fmt.Errorf("logs panel: %q", text)
		}
		return nil
	})
	shot(t, p, ctx, "ui-logs.png")
	if err := p.eval(ctx, `document.getElementById('logs-close').click()`, nil); err != nil {
		t.Fatal(err)
	}

	// The restart button of web-1 restarts it through its agent: a new
	// process, drawn running.
	web1 := find(t, st, "web-1")
	if err := p.eval(ctx, `document.querySelector('[data-container="web-1"] [data-action="restart"]').click()`, nil); err != nil {
		t.Fatalf("clicking restart of web-1: %v", err)
	}
	eventually(t, 30*time.Second, "web-1 running again with a new pid, on the page", func() error {
		got := read().Containers["web-1"]
		if got["state"] != "running" || got["pid"] == fmt.Sprint(web1.Pid) || got["pid"] == "0" {
			return fmt.Errorf("web-1 drawn %v (pid before %d)", got, web1.Pid)
		}
		return nil
	})
	after := find(t, c.status(t), "web-1")
	if after.Pid == web1.Pid || after.Host != web1.Host || after.IP != web1.IP {
		t.Fatalf("web-1 after the restart: pid %d host %s ip %s; before: pid %d host %s ip %s", after.Pid, after.Host, after.IP, web1.Pid, web1.Host, web1.IP)
	}

	// weft restart takes the same path from the command line.
	web2 := find(t, st, "web-2")
	if out := mustWeft(t, "restart", "-f", c.file, "web-2"); !strings.Contains(out, "restarted web-2 on "+web2.Host) {
		t.Fatalf("weft restart web-2 printed %q", out)
	}
	eventually(t, 30*time.Second, "web-2 running again with a new pid, on the page", func() error {
		got := read().Containers["web-2"]
		if got["state"] != "running" || got["pid"] == fmt.Sprint(web2.Pid) || got["pid"] == "0" {
			return fmt.Errorf("web-2 drawn %v (pid before %d)", got, web2.Pid)
		}
		return nil
	})

	// host2 crashes (frozen and cut off): the page draws it DOWN, and
	// host1 up.
	l := &lab.Lab{}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := l.Restore(context.Background(), c.name, "host2"); err != nil {
				t.Errorf("restoring host2: %v", err)
			}
		}
	}
	t.Cleanup(restore) // before weft down (registered later, runs first)
	if err := l.Crash(ctx, c.name, "host2"); err != nil {
		t.Fatalf("crashing host2: %v", err)
	}
	crashed := time.Now()
	eventually(t, 20*time.Second, "host2 drawn down, host1 up", func() error {
		d = read()
		if d.Hosts["host2"] != "true" || d.Hosts["host1"] != "false" {
			return fmt.Errorf("drawn down: %v", d.Hosts)
		}
		return nil
	})
	t.Logf("page showed host2 down %s after the crash", time.Since(crashed).Round(time.Millisecond))
	shot(t, p, ctx, "ui-host-down.png")
	restore()
}

// startUI runs `weft ui` inside ns on a free port of its 127.0.0.1 and
// returns the page's address; it stops when the test ends.
func startUI(t *testing.T, ns string, c cluster) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, weftBin, "ui", "--cluster", c.name, "--listen", "127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting weft ui: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("weft ui ended with %v: %s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("weft ui did not stop within 10s of SIGTERM")
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`at (http://127\.0\.0\.1:\d+/)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		t.Fatalf("weft ui printed no address within 30s; stderr: %s", stderr.String())
		return ""
	}
}

// shot saves a screenshot of the page in $WEFT_UI_SHOT (a directory) or
// the test's temporary directory, and logs where.
func shot(t *testing.T, p *page, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("WEFT_UI_SHOT")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.screenshot(ctx, f); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
}
