// Package labrun is what the `weft bench` subcommands share to run loads
// inside lab namespaces: switching one OS thread into a named netns to create
// sockets or fork processes there, a throwaway weft cluster driven through
// the weft binary, and the statistics of the figures.
package labrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/syncbuf"
)

// Do runs fn on an OS thread switched into the named network namespace.
// Sockets and child processes created by fn keep that namespace after Do
// returns; everything else fn does is ordinary.
func Do(nsName string, fn func() error) error { return nsthread.DoNamed(nsName, fn) }

// Listen opens a TCP listener inside the named namespace.
func Listen(nsName, addr string) (net.Listener, error) {
	var l net.Listener
	err := Do(nsName, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on %s in %s: %w", addr, nsName, err)
	}
	return l, nil
}

// Dial opens a TCP connection from inside the named namespace.
func Dial(ctx context.Context, nsName, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(nsName, func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s from %s: %w", addr, nsName, err)
	}
	return c, nil
}

// Proc is a process started inside a namespace, in its own process group so
// that stopping it also stops the children it forked (nginx's workers).
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	out    *syncbuf.Buffer
	done   chan struct{}
	err    error
	stopMu sync.Mutex
}

// Start runs argv inside the named namespace. The process is killed when ctx
// ends, and also when this program dies (Pdeathsig).
func Start(ctx context.Context, nsName string, argv ...string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, errors.New("starting a process: empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := Do(nsName, cmd.Start); err != nil {
		return nil, fmt.Errorf("starting %s in %s: %w", strings.Join(argv, " "), nsName, err)
	}
	p := &Proc{Name: filepath.Base(argv[0]), cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Run runs argv inside the named namespace to completion and returns its
// combined output.
func Run(ctx context.Context, nsName string, argv ...string) (string, error) {
	p, err := Start(ctx, nsName, argv...)
	if err != nil {
		return "", err
	}
	err = p.Wait(ctx)
	return p.Output(), err
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is what the process wrote so far on stdout and stderr.
func (p *Proc) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to end and returns its failure, with its
// output, if it failed.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		p.Stop()
		return fmt.Errorf("waiting for %s: %w; it wrote: %s", p.Name, ctx.Err(), lastLines(p.Output(), 5))
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w: %s", p.Name, p.err, lastLines(p.Output(), 5))
	}
	return nil
}

// Stop ends the process group: SIGTERM, then SIGKILL after 3 s.
func (p *Proc) Stop() {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
	// Children that outlived their leader still carry its group id.
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
}

// Listening reports whether the process's network namespace has a TCP socket
// listening on port, read from /proc/<pid>/net/tcp and tcp6: asking this way
// does not spend a one-off server's only connection.
func (p *Proc) Listening(port int) bool {
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", p.Pid(), file))
		if err == nil && listeningIn(string(b), port) {
			return true
		}
	}
	return false
}

// listeningIn parses /proc/net/tcp{,6} text: local_address is hex ip:port and
// state 0A is LISTEN.
func listeningIn(procNetTCP string, port int) bool {
	for _, line := range strings.Split(procNetTCP, "\n")[1:] {
		fields := strings.Fields(line)
		if len(fields) < 4 || fields[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(v) == port {
			return true
		}
	}
	return false
}

// Poll calls cond every 50 ms until it holds or timeout passes.
func Poll(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: not after %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Cluster is a throwaway weft cluster brought up from a generated file.
type Cluster struct {
	Name string
	File string
	weft string
	log  *slog.Logger
}

// Status is the part of `weft status --json` the benchmarks read.
type Status struct {
	Hosts []struct {
		Name    string `json:"name"`
		Address string `json:"address"`
		Netns   string `json:"netns"`
	} `json:"hosts"`
	Containers []struct {
		Container string `json:"container"`
		Service   string `json:"service"`
		Host      string `json:"host"`
		IP        string `json:"ip"`
		Netns     string `json:"netns"`
		Pid       int    `json:"pid"`
		State     string `json:"state"`
		Health    string `json:"health"`
	} `json:"containers"`
}

// HostNetns is the namespace of the named host.
func (s Status) HostNetns(host string) (netns, addr string, err error) {
	for _, h := range s.Hosts {
		if h.Name == host {
			return h.Netns, h.Address, nil
		}
	}
	return "", "", fmt.Errorf("host %s is not in the cluster's status", host)
}

// ContainerNetns is the namespace and overlay address of the named container.
func (s Status) ContainerNetns(container string) (netns, ip string, err error) {
	for _, c := range s.Containers {
		if c.Container == container {
			return c.Netns, c.IP, nil
		}
	}
	return "", "", fmt.Errorf("container %s is not in the cluster's status", container)
}

// ContainerPid is the host pid of the named container's process.
func (s Status) ContainerPid(container string) (int, error) {
	for _, c := range s.Containers {
		if c.Container == container {
			if c.Pid <= 0 {
				return 0, fmt.Errorf("container %s has no process (state %s)", container, c.State)
			}
			return c.Pid, nil
		}
	}
	return 0, fmt.Errorf("container %s is not in the cluster's status", container)
}

// Up writes clusterYAML to dir/<name>.yaml and runs `weft up`. On failure it
// has already run `weft down`; on success the caller must call Down.
func Up(ctx context.Context, weft, dir, name, clusterYAML string, log *slog.Logger) (*Cluster, error) {
	c := &Cluster{Name: name, File: filepath.Join(dir, name+".yaml"), weft: weft, log: log}
	if err := os.WriteFile(c.File, []byte(clusterYAML), 0o644); err != nil {
		return nil, fmt.Errorf("writing cluster file %s: %w", c.File, err)
	}
	log.Info("bringing up a cluster", "cluster", name, "file", c.File)
	out, err := exec.CommandContext(ctx, weft, "up", "-f", c.File).CombinedOutput()
	if err != nil {
		if downErr := c.Down(); downErr != nil {
			log.Warn("removing the half-made cluster", "cluster", name, "err", downErr)
		}
		return nil, fmt.Errorf("weft up -f %s: %w: %s", c.File, err, lastLines(string(out), 10))
	}
	return c, nil
}

// Status runs `weft status --json`.
func (c *Cluster) Status(ctx context.Context) (Status, error) {
	var s Status
	out, err := exec.CommandContext(ctx, c.weft, "status", "--json", "-f", c.File).Output()
	if err != nil {
		return s, fmt.Errorf("weft status -f %s: %w", c.File, err)
	}
	if err := json.Unmarshal(out, &s); err != nil {
		return s, fmt.Errorf("reading weft status of %s: %w", c.Name, err)
	}
	return s, nil
}

// Down removes the cluster. It does not take the caller's context: it also
// runs after a cancel (ctrl-C), bounded by its own two minutes.
func (c *Cluster) Down() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	// A second attempt finishes what a first one cut short on a busy
	// machine; down is safe to repeat.
	for attempt := range 2 {
		var out []byte
		out, err = exec.CommandContext(ctx, c.weft, "down", "--cluster", c.Name).CombinedOutput()
		if err == nil {
			break
		}
		err = fmt.Errorf("weft down --cluster %s: %w: %s", c.Name, err, lastLines(string(out), 5))
		if attempt == 0 {
			c.log.Warn("removing the cluster failed; trying again", "cluster", c.Name, "err", err)
			time.Sleep(time.Second)
		}
	}
	if err != nil {
		return err
	}
	c.log.Info("removed the cluster", "cluster", c.Name)
	return nil
}

// Percentile is the p-th percentile (0..100) of samples by nearest rank; it
// sorts samples in place.
func Percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	rank := int(p/100*float64(len(samples))+0.999999999) - 1
	rank = max(0, min(rank, len(samples)-1))
	return samples[rank]
}

// Median of the values (the mean of the middle two for an even count).
func Median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	v := append([]float64(nil), values...)
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// Ratio is a/b, or 0 when b is 0 so that an incomplete pair shows as such.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// FormatRatio prints a ratio the way every table shows it.
func FormatRatio(r float64) string { return strconv.FormatFloat(r, 'f', 3, 64) }

// RandomSuffix is n hex digits for unique names of clusters and namespaces.
func RandomSuffix(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)[:n]
}

// BusyNote reads the 1-minute load average and, when it exceeds the CPU
// count, returns a warning for the report's notes: other work on the machine
// took CPU from the measurement.
func BusyNote(when string) (float64, string) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, ""
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0, ""
	}
	load, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || load <= float64(runtime.NumCPU()) {
		return load, ""
	}
	return load, fmt.Sprintf("the machine was busy %s (load average %.1f on %d CPUs): other work may have shared the CPUs, so figures may be lower and noisier than on an idle machine (compare the rounds in the JSON)", when, load, runtime.NumCPU())
}

// ChooseTool resolves a benchmark's load generator: "" means binary when it
// is installed, else the built-in Go load; binary must be installed; any
// other value is refused.
func ChooseTool(requested, binary string) (string, error) {
	_, missing := exec.LookPath(binary)
	switch requested {
	case "":
		if missing == nil {
			return binary, nil
		}
		return "builtin", nil
	case binary:
		if missing != nil {
			return requested, fmt.Errorf("tool %s is not installed; install it (apt-get install -y %s) or choose the built-in load", binary, binary)
		}
		return requested, nil
	case "builtin":
		return requested, nil
	default:
		return requested, fmt.Errorf("tool %q: choose %s or builtin", requested, binary)
	}
}
