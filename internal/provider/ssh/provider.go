// Package ssh is provider ssh: the hosts of a cluster are servers that
// already exist, reached with golang.org/x/crypto/ssh at the address the
// file gives each host. It checks every server's kernel before changing
// anything, installs the running weft binary (by hash) and the host's
// certificates and bootstrap file under the host's install root, runs the
// agent under systemd (Restart=always) where systemd is PID 1 and under
// weft's own host supervisor elsewhere, and removes all of it again on
// `weft down`. Every step compares before it writes, so a second `weft up`
// changes nothing (Changes reports 0).
//
// The ssh connections are made through Dial, given by the caller: on real
// servers a plain TCP dial from this machine; in the tests a dial from
// inside the lab's router namespace, so that no route into the lab is ever
// needed in the root namespace.
package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	xssh "golang.org/x/crypto/ssh"

	"github.com/weft-dev/weft/internal/provider"
	"github.com/weft-dev/weft/internal/spec"
)

// Hidden weft commands the provider runs on a server.
const (
	HostStartCommand   = "host-start"   // starts the host supervisor in the server's own namespace
	HostCleanupCommand = "host-cleanup" // removes what the host's agent made
)

// StartedWord is what `weft host-start` prints before the agent's pid.
func StartedWord(started bool) string {
	if started {
		return "started"
	}
	return "running"
}

// DialFunc opens the TCP connection to a server's sshd.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Provider reaches the servers of clusters over ssh.
type Provider struct {
	StateRoot string // this machine's state root: certificates, bootstrap files, the record of the servers
	// Dial opens connections to the servers; nil: a TCP dial from this
	// machine's network namespace.
	Dial DialFunc
	// AcceptNewHostKeys adds the key of a server missing from known_hosts
	// to it instead of refusing the server (`weft up
	// --accept-new-host-keys`). A key that differs from the recorded one is
	// refused whatever this says.
	AcceptNewHostKeys bool
	Log               *slog.Logger
	// Say prints one line of what changed on a server; nil: nothing.
	Say func(format string, args ...any)

	changes atomic.Int64
	mu      sync.Mutex
	clients map[string]*xssh.Client // by "cluster/host"
	records map[string]*record      // by cluster
	khMu    sync.Mutex              // appending to known_hosts
}

var (
	_ provider.Provider      = (*Provider)(nil)
	_ provider.AgentDialer   = (*Provider)(nil)
	_ provider.ChangeCounter = (*Provider)(nil)
)

// Changes counts what this provider changed on the servers: files copied,
// units written, agents started, host keys accepted.
func (p *Provider) Changes() int { return int(p.changes.Load()) }

func (p *Provider) changed(host, format string, args ...any) {
	p.changes.Add(1)
	if p.Say != nil {
		p.Say("%s: "+format, append([]any{host}, args...)...)
	}
}

func (p *Provider) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Exists says whether this machine holds the record of the cluster's
// servers (written by the first Ensure, removed by Destroy).
func (p *Provider) Exists(cluster string) (bool, error) {
	_, found, err := readRecord(p.StateRoot, cluster)
	return found, err
}

// Ensure connects to every server, checks them all, and returns them; it
// changes nothing on a server (StartAgent installs). Every problem of
// every server comes back at once.
func (p *Provider) Ensure(ctx context.Context, c *spec.Cluster) (map[string]provider.HostInfo, error) {
	if c.Provider != spec.ProviderSSH {
		return nil, fmt.Errorf("cluster %s: provider ssh was given a file of provider %q", c.Name, c.Provider)
	}
	rec, err := newRecord(c)
	if err != nil {
		return nil, err
	}
	var problems []string
	for host, list := range rec.Artifacts {
		for _, a := range list {
			if _, err := os.Stat(a.Local); err != nil {
				problems = append(problems, fmt.Sprintf("  %s: artifact %s: %v (build it, or fix the path under the service's artifacts)", host, a.Local, err))
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("artifacts are missing on this machine; nothing was changed on any server:\n%s", strings.Join(problems, "\n"))
	}
	if err := writeRecord(p.StateRoot, c.Name, rec); err != nil {
		return nil, err
	}
	p.remember(c.Name, rec)
	type result struct {
		check preflight
		err   error
	}
	results := make([]result, len(c.Hosts))
	var wg sync.WaitGroup
	for i, h := range c.Hosts {
		wg.Go(func() {
			cl, err := p.client(ctx, c.Name, rec.SSH, h)
			if err != nil {
				results[i].err = err
				return
			}
			results[i].check, results[i].err = runPreflight(ctx, cl, c, h)
		})
	}
	wg.Wait()
	hosts := make(map[string]provider.HostInfo, len(c.Hosts))
	for i, h := range c.Hosts {
		r := results[i]
		switch {
		case r.err != nil:
			problems = append(problems, fmt.Sprintf("  %s (%s): %v", h.Name, h.Address, r.err))
			continue
		case len(r.check.Missing) > 0:
			for _, m := range r.check.Missing {
				problems = append(problems, fmt.Sprintf("  %s (%s): %s", h.Name, h.Address, m))
			}
			continue
		}
		rec.Init[h.Name] = r.check.Init
		hosts[h.Name] = provider.HostInfo{Name: h.Name, Subnet: h.Subnet, Address: h.Address, MTU: r.check.MTU}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("the servers are not ready for weft; nothing was changed on any of them:\n%s", strings.Join(problems, "\n"))
	}
	if err := writeRecord(p.StateRoot, c.Name, rec); err != nil {
		return nil, err
	}
	return hosts, nil
}

// Run runs argv on the host's server as the ssh user, with stdin.
func (p *Provider) Run(ctx context.Context, cluster, host string, argv []string, stdin io.Reader) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("running a command on host %s: no command given", host)
	}
	cl, _, err := p.hostClient(ctx, cluster, host)
	if err != nil {
		return nil, err
	}
	return run(ctx, cl, shellJoin(argv), stdin)
}

// Weft runs the server's own weft (its install root's binary, state root
// and the cluster) with args, streaming stdin, stdout and stderr, and
// returns the command's exit status: `weft exec` on a server, from here.
func (p *Provider) Weft(ctx context.Context, cluster, host string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cl, h, err := p.hostClient(ctx, cluster, host)
	if err != nil {
		return -1, err
	}
	l := layoutOf(h)
	argv := append([]string{l.bin(), "--state-root", l.stateRoot(), "--cluster", cluster}, args...)
	return stream(ctx, cl, shellJoin(argv), stdin, stdout, stderr)
}

// AgentHosts lists the servers of a cluster from this machine's record.
func (p *Provider) AgentHosts(cluster string) ([]string, error) {
	rec, err := p.record(cluster)
	if err != nil {
		return nil, err
	}
	hosts := make([]string, 0, len(rec.Hosts))
	for _, h := range rec.Hosts {
		hosts = append(hosts, h.Name)
	}
	return hosts, nil
}

// DialAgent connects to the API socket of the host's agent on its server,
// through the ssh connection (a streamlocal channel: the socket never
// leaves the server).
func (p *Provider) DialAgent(ctx context.Context, cluster, host string) (net.Conn, error) {
	cl, h, err := p.hostClient(ctx, cluster, host)
	if err != nil {
		return nil, err
	}
	return cl.DialContext(ctx, "unix", layoutOf(h).agentSocket(cluster, host))
}

// hostClient returns the connection to a host of a cluster this machine
// holds the record of.
func (p *Provider) hostClient(ctx context.Context, cluster, host string) (*xssh.Client, spec.Host, error) {
	rec, err := p.record(cluster)
	if err != nil {
		return nil, spec.Host{}, err
	}
	h, ok := rec.host(host)
	if !ok {
		return nil, spec.Host{}, fmt.Errorf("host %s is not a server of cluster %s (run `weft up` with the file that names it)", host, cluster)
	}
	cl, err := p.client(ctx, cluster, rec.SSH, h)
	return cl, h, err
}

// record returns the cluster's record, read once.
func (p *Provider) record(cluster string) (*record, error) {
	p.mu.Lock()
	rec := p.records[cluster]
	p.mu.Unlock()
	if rec != nil {
		return rec, nil
	}
	rec, found, err := readRecord(p.StateRoot, cluster)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("cluster %s has no servers recorded on this machine (bring it up with `weft up -f FILE`)", cluster)
	}
	p.remember(cluster, rec)
	return rec, nil
}

func (p *Provider) remember(cluster string, rec *record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.records == nil {
		p.records = map[string]*record{}
	}
	p.records[cluster] = rec
}

// Close closes every ssh connection.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for k, cl := range p.clients {
		errs = append(errs, cl.Close())
		delete(p.clients, k)
	}
	return errors.Join(errs...)
}
