// Package gateway is `weft bench gateway`: requests per second and latency
// through weft's gateway against nginx with the same route to the same
// backend, loaded by the same generator from the same namespace, in
// alternating rounds inside a small weft cluster.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
	"github.com/weft-dev/weft/internal/bench/report"
)

// Options of one run. Zero fields take the defaults in parentheses.
type Options struct {
	Duration    time.Duration // of each measurement in a round (10s)
	Rounds      int           // alternating rounds (3)
	Connections []int         // concurrent keep-alive connections of the load ([64])
	ResultsDir  string        // where the CLI saves the report; Run itself writes nothing there
	Log         *slog.Logger  // progress (discarded)
	Weft        string        // path of the weft binary (required)
	Hello       string        // path of the hello backend (bin/hello next to Weft)
	Tool        string        // "wrk", "builtin", or "" for wrk when installed
	WorkDir     string        // where the cluster file and configs go (a temporary folder)
	// NoInstall stops Run from installing Debian's nginx with apt-get when it
	// is missing; a missing nginx is then an error that says how to.
	NoInstall bool
}

// The two proxies, in the order of the table's columns.
const (
	Weft  = "weft gateway"
	Nginx = "nginx"
)

// Ports inside the gateway container: the weft gateway's are those of its
// documented example config; nginx sits next to it.
const (
	weftPort    = 8081
	metricsPort = 9101
	nginxPort   = 8082
	backendPort = 8080
)

func (o *Options) defaults() error {
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Rounds == 0 {
		o.Rounds = 3
	}
	if len(o.Connections) == 0 {
		o.Connections = []int{64}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Hello == "" && o.Weft != "" {
		o.Hello = filepath.Join(filepath.Dir(o.Weft), "hello")
	}
	var problems []error
	if o.Duration < 100*time.Millisecond {
		problems = append(problems, fmt.Errorf("duration %s is too short to measure; give at least 1s", o.Duration))
	}
	if o.Rounds < 1 {
		problems = append(problems, fmt.Errorf("rounds = %d: give at least 1", o.Rounds))
	}
	for _, n := range o.Connections {
		if n < 1 || n > 1000 {
			problems = append(problems, fmt.Errorf("connections = %d: give 1 to 1000", n))
		}
	}
	if o.Weft == "" {
		problems = append(problems, errors.New("the path of the weft binary is missing; pass Options.Weft"))
	}
	if _, err := os.Stat(o.Hello); o.Hello != "" && err != nil {
		problems = append(problems, fmt.Errorf("the hello backend %s is missing: run make build, or pass its path", o.Hello))
	}
	tool, err := labrun.ChooseTool(o.Tool, "wrk")
	o.Tool = tool
	if err != nil {
		problems = append(problems, err)
	}
	return errors.Join(problems...)
}

// ensureNginx finds nginx, installing Debian's package when allowed.
func ensureNginx(ctx context.Context, o Options) (string, error) {
	if path, err := exec.LookPath("nginx"); err == nil {
		return path, nil
	}
	if o.NoInstall {
		return "", errors.New("nginx is not installed: install it (apt-get install -y nginx-light) or let the bench install it")
	}
	o.Log.Info("installing nginx with apt-get")
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "nginx-light")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("installing nginx (apt-get install -y nginx-light): %w: %s", err, out)
	}
	return exec.LookPath("nginx")
}

// Run brings up a cluster with the backend, the weft gateway and an idle
// load container, starts nginx next to the gateway, measures both in
// alternating rounds, removes everything, and reports.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("weft bench gateway: %w", err)
	}
	nginx, err := ensureNginx(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("weft bench gateway: %w", err)
	}
	started := time.Now()
	loadStart, busyStart := labrun.BusyNote("at the start")
	workDir := o.WorkDir
	if workDir == "" {
		dir, err := os.MkdirTemp("", "weft-bench-gateway-")
		if err != nil {
			return nil, fmt.Errorf("making a work folder: %w", err)
		}
		defer os.RemoveAll(dir)
		// The gateway container runs as the cluster's unprivileged mapped
		// root (user namespaces): it must reach its config and workdir.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, fmt.Errorf("opening the work folder to the containers: %w", err)
		}
		workDir = dir
	}
	gwConfig := filepath.Join(workDir, "gateway.json")
	if err := writeGatewayConfig(gwConfig); err != nil {
		return nil, err
	}
	name := "bg" + labrun.RandomSuffix(4)
	cluster, err := labrun.Up(ctx, o.Weft, workDir, name, clusterFile(name, o.Hello, gwConfig), o.Log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := cluster.Down(); err != nil {
			o.Log.Error("removing the bench cluster; run weft down by hand", "cluster", cluster.Name, "err", err)
		}
	}()
	status, err := cluster.Status(ctx)
	if err != nil {
		return nil, err
	}
	gwNetns, gwIP, err := status.ContainerNetns("gateway-1")
	if err != nil {
		return nil, err
	}
	_, backendIP, err := status.ContainerNetns("web-1")
	if err != nil {
		return nil, err
	}
	loadNetns, _, err := status.ContainerNetns("load-1")
	if err != nil {
		return nil, err
	}

	nginxDir := filepath.Join(workDir, "nginx")
	if err := writeNginxConfig(nginxDir, backendIP); err != nil {
		return nil, err
	}
	nginxProc, err := labrun.Start(ctx, gwNetns, nginx, "-p", nginxDir+"/", "-c", filepath.Join(nginxDir, "nginx.conf"),
		"-e", filepath.Join(nginxDir, "error.log"))
	if err != nil {
		return nil, err
	}
	defer nginxProc.Stop()

	urls := map[string]string{
		Weft:  fmt.Sprintf("http://%s:%d/", gwIP, weftPort),
		Nginx: fmt.Sprintf("http://%s:%d/", gwIP, nginxPort),
	}
	for _, proxy := range []string{Weft, Nginx} {
		if err := waitServing(ctx, loadNetns, urls[proxy], 20*time.Second); err != nil {
			if proxy == Nginx {
				err = fmt.Errorf("%w; nginx says: %s", err, nginxProc.Output())
			}
			return nil, fmt.Errorf("%s is not serving: %w", proxy, err)
		}
	}
	load := wrkLoad
	if o.Tool == "builtin" {
		load = builtinLoad
	}
	gwPid, err := status.ContainerPid("gateway-1")
	if err != nil {
		return nil, err
	}
	// What each proxy burns per request is what decides requests/s when the
	// load, both proxies and the backend share the machine's CPUs.
	proxyCPU := map[string]func() (time.Duration, error){
		Weft:  func() (time.Duration, error) { return procCPU(gwPid) },
		Nginx: func() (time.Duration, error) { return groupCPU(nginxProc.Pid()) },
	}
	m := &measurements{Connections: o.Connections, Rounds: o.Rounds}
	// A short first pass fills both proxies' upstream connection pools and
	// the gateway's DNS cache, so the first measured round is not the cold one.
	for _, proxy := range []string{Weft, Nginx} {
		if _, err := load(ctx, loadNetns, urls[proxy], o.Connections[0], min(o.Duration, time.Second)); err != nil {
			return nil, fmt.Errorf("warming up %s: %w", proxy, err)
		}
	}
	for round := range o.Rounds {
		order := []string{Weft, Nginx}
		if round%2 == 1 {
			order = []string{Nginx, Weft}
		}
		for _, proxy := range order {
			for _, c := range o.Connections {
				cpuBefore, err := proxyCPU[proxy]()
				if err != nil {
					return nil, err
				}
				res, err := load(ctx, loadNetns, urls[proxy], c, o.Duration)
				if err != nil {
					return nil, fmt.Errorf("round %d, %s with %d connections: %w", round+1, proxy, c, err)
				}
				cpuAfter, err := proxyCPU[proxy]()
				if err != nil {
					return nil, err
				}
				res.CPU = cpuAfter - cpuBefore
				m.add(proxy, c, res)
				o.Log.Info("gateway load", "round", round+1, "proxy", proxy, "connections", c,
					"rps", int(res.RPS), "p50", res.P50, "p99", res.P99, "errors", res.Errors, "cpu", res.CPU)
			}
		}
	}
	if nginxProc.Exited() {
		return nil, fmt.Errorf("nginx ended during the run: %s", nginxProc.Output())
	}
	r := buildReport(m, toolName(ctx, o.Tool))
	loadEnd, busyEnd := labrun.BusyNote("at the end")
	r.Values["loadavg_start"], r.Values["loadavg_end"] = loadStart, loadEnd
	for _, note := range []string{busyStart, busyEnd} {
		if note != "" {
			r.Notes = append(r.Notes, note)
		}
	}
	r.Started = started
	r.Machine = report.ThisMachine()
	r.Values["duration_s"] = o.Duration.Seconds()
	r.Values["nginx"] = nginxVersion(ctx, nginx)
	return r, nil
}

// clusterFile is three hosts (the gateway's workdir is the directory of
// its config, so that the file is in its private root): the hello backend on host1, the weft gateway
// on host2 (nginx joins its namespace), the load's container on host3, so
// both proxies' traffic crosses the overlay the same way.
func clusterFile(name, hello, gatewayConfig string) string {
	return fmt.Sprintf(`version: 1
name: %s
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {s1: 192.168.1.0/24, s2: 192.168.2.0/24, s3: 192.168.3.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: s1}
  - {name: host2, subnet: s2}
  - {name: host3, subnet: s3}
services:
  web:
    command: [%q, -listen, ":%d", -name, web]
    host: host1
    port: %d
    health: {http: /health, interval: 500ms}
  gateway:
    command: [weft, gateway, --config, %q]
    workdir: %q
    host: host2
    port: %d
    depends_on: [web]
    health: {http: /health, interval: 500ms}
  load:
    command: [sleep, infinity]
    host: host3
`, name, hello, backendPort, backendPort, gatewayConfig, filepath.Dir(gatewayConfig), weftPort)
}

func writeGatewayConfig(path string) error {
	cfg := map[string]any{
		"listen":         fmt.Sprintf(":%d", weftPort),
		"metrics_listen": fmt.Sprintf(":%d", metricsPort),
		"routes":         []map[string]any{{"prefix": "/", "service": "web", "port": backendPort}},
		"domain":         "weft",
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the gateway config: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing the gateway config %s: %w", path, err)
	}
	return nil
}

// writeNginxConfig is the weft gateway's route in nginx terms: / to the
// backend, HTTP/1.1 with a keep-alive pool towards it (the gateway keeps
// one too), an access log line per request (the gateway writes one too),
// everything nginx writes inside dir.
func writeNginxConfig(dir, backendIP string) error {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return fmt.Errorf("making nginx's folder %s: %w", dir, err)
	}
	conf := fmt.Sprintf(`# generated by weft bench gateway
user root;
daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  upstream web { server %[2]s:%[3]d; keepalive 256; }
  server {
    listen %[4]d;
    location / {
      proxy_pass http://web;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`, dir, backendIP, backendPort, nginxPort)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("writing nginx's config: %w", err)
	}
	return nil
}

func nginxVersion(ctx context.Context, nginx string) string {
	out, err := exec.CommandContext(ctx, nginx, "-v").CombinedOutput()
	if err != nil {
		return "nginx"
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
}

func toolName(ctx context.Context, tool string) string {
	if tool == "wrk" {
		out, _ := exec.CommandContext(ctx, "wrk", "-v").CombinedOutput()
		// `wrk -v` starts "wrk 4.1.0 [epoll] ..." (and exits 1).
		if f := strings.Fields(string(out)); len(f) > 1 && f[0] == "wrk" {
			return "wrk " + f[1]
		}
		return "wrk"
	}
	return "built-in Go HTTP/1.1 keep-alive load (closed loop)"
}
