// Package integration drives the weft binary against real lab clusters:
// namespaces, veths, VXLAN, etcd, containers. It needs root.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/weft-dev/weft/internal/runtime"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/naming"
)

// Paths of the binaries built once for the whole run.
var (
	weftBin  string
	helloBin string
	shopBin  string
	repoDir  string
)

func TestMain(m *testing.M) {
	// runtime.ExecCommand (execVia) runs this binary as the exec helper.
	if len(os.Args) > 1 && os.Args[1] == "container-exec" {
		runtime.ContainerExecMain(os.Args[2:])
	}
	if os.Geteuid() != 0 {
		fmt.Println("integration tests need root (network namespaces); skipping")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "weft-it-")
	if err != nil {
		panic(err)
	}
	// Containers that drop root (PostgreSQL runs as postgres) must reach
	// the binaries built here.
	if err := os.Chmod(dir, 0o755); err != nil {
		panic(err)
	}
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		panic(err)
	}
	modDir := filepath.Dir(strings.TrimSpace(string(root)))
	repoDir = modDir
	weftBin = filepath.Join(dir, "weft")
	helloBin = filepath.Join(dir, "hello")
	shopBin = filepath.Join(dir, "shop")
	for _, b := range []struct{ bin, dir, pkg string }{
		{weftBin, modDir, "./cmd/weft"},
		{helloBin, modDir, "./examples/hello"},
		{shopBin, filepath.Join(modDir, "apps/shop"), "./cmd/shop"}, // a module of its own
	} {
		cmd := exec.Command("go", "build", "-o", b.bin, b.pkg)
		cmd.Dir = b.dir
		if b.bin == weftBin {
			// Static, as make build builds it: the userns stage runs
			// weft again inside an image's root, which has no libc.
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Printf("building %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// twoHosts is the head of most test cluster files: two hosts in two
// subnets of one network; the services follow. NAME is replaced by
// writeCluster.
const twoHosts = `version: 1
name: NAME
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a}
  - {name: host2, subnet: b}
`

// uniqueName gives every test cluster its own name.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%04x", prefix, rand.IntN(0xffff))
}

// result is one run of the weft binary.
type result struct {
	stdout, stderr string
	code           int
}

func weft(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, weftBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			t.Fatalf("running weft %v: %v", args, err)
		}
	}
	return result{out.String(), errb.String(), code}
}

func mustWeft(t *testing.T, args ...string) string {
	t.Helper()
	r := weft(t, args...)
	if r.code != 0 {
		t.Fatalf("weft %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// cluster is one lab cluster brought up for a test.
type cluster struct {
	name string
	file string
}

// writeCluster writes a cluster file from a template where NAME and HELLO
// stand for the cluster name and the hello binary.
func writeCluster(t *testing.T, name, tmpl string) cluster {
	t.Helper()
	body := strings.NewReplacer("NAME", name, "HELLO", helloBin).Replace(tmpl)
	file := filepath.Join(t.TempDir(), "weft.yaml")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cluster{name: name, file: file}
}

// upCluster brings the cluster up and removes it when the test ends, also on
// failure.
func upCluster(t *testing.T, c cluster) {
	t.Helper()
	t.Cleanup(func() {
		keepLogs(t, c.name)
		r := weft(t, "down", "--cluster", c.name)
		if r.code != 0 {
			t.Errorf("weft down %s: %s%s", c.name, r.stdout, r.stderr)
		}
	})
	mustWeft(t, "up", "-f", c.file)
}

// keepLogs copies the logs of a failed test's cluster (every host's agent,
// resolver and supervisor log) to $WEFT_KEEP_LOGS/<cluster>/ before `down`
// removes them, when WEFT_KEEP_LOGS names a directory.
func keepLogs(t *testing.T, cluster string) {
	dir := os.Getenv("WEFT_KEEP_LOGS")
	if dir == "" || !t.Failed() {
		return
	}
	hosts := filepath.Join(naming.StateDir(naming.DefaultStateRoot, cluster), "hosts")
	logs, _ := filepath.Glob(filepath.Join(hosts, "*", "*.log"))
	for _, f := range logs {
		rel, _ := filepath.Rel(hosts, f)
		dst := filepath.Join(dir, cluster, rel)
		if body, err := os.ReadFile(f); err == nil && os.MkdirAll(filepath.Dir(dst), 0o755) == nil {
			_ = os.WriteFile(dst, body, 0o644)
		}
	}
	t.Logf("logs of %s kept in %s", cluster, filepath.Join(dir, cluster))
}

func (c cluster) rewrite(t *testing.T, tmpl string) {
	t.Helper()
	body := strings.NewReplacer("NAME", c.name, "HELLO", helloBin).Replace(tmpl)
	if err := os.WriteFile(c.file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (c cluster) status(t *testing.T) api.Status {
	t.Helper()
	out := mustWeft(t, "status", "--json", "-f", c.file)
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("decoding status: %v\n%s", err, out)
	}
	return st
}

// exec runs argv inside a container and returns its output and exit code.
func (c cluster) exec(t *testing.T, container string, argv ...string) result {
	t.Helper()
	return weft(t, append([]string{"exec", "-f", c.file, container, "--"}, argv...)...)
}

// inNetns runs a command inside a named network namespace (a lab host or
// router): test clients never run in the root namespace.
func inNetns(ns string, argv ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
}

func hostNetns(c cluster, host string) string { return naming.HostNetns(c.name, host) }

// eventually polls cond until it holds or the limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %s: %v", what, limit, err)
}
