package cluster

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/provider"
	sshprov "github.com/weft-dev/weft/internal/provider/ssh"
)

// Agents reaches the agents of one cluster from this machine, wherever
// they run: through their sockets under this machine's state root (the
// lab), or through ssh to the servers (provider ssh; the record `weft up`
// left says which). Close it after use.
type Agents struct {
	Name      string
	stateRoot string
	dialer    provider.AgentDialer // nil: the local sockets
	weft      remoteWeft           // nil: weft runs here
	closer    io.Closer
}

// remoteWeft runs the weft of a host's server (sshprov.Provider.Weft).
type remoteWeft interface {
	Weft(ctx context.Context, cluster, host string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

// OpenAgents returns how to reach the named cluster's agents.
func OpenAgents(name string, o ProviderOptions) (*Agents, error) {
	a := &Agents{Name: name, stateRoot: o.StateRoot}
	if !sshprov.HasRecord(o.StateRoot, name) {
		return a, nil
	}
	p, err := ProviderOf(name, o)
	if err != nil {
		return nil, err
	}
	a.closer, _ = p.(io.Closer)
	a.dialer, _ = p.(provider.AgentDialer)
	a.weft, _ = p.(remoteWeft)
	return a, nil
}

// Close closes the connections to the servers.
func (a *Agents) Close() error {
	if a.closer != nil {
		return a.closer.Close()
	}
	return nil
}

// Remote says whether the agents run on other machines (and `weft exec`
// must run there: Weft).
func (a *Agents) Remote() bool { return a.dialer != nil }

// Client is the API client of host's agent.
func (a *Agents) Client(host string) *api.Client {
	if a.dialer != nil {
		return dialAgent(a.dialer, a.Name, host)
	}
	return api.NewClient(naming.AgentSocket(a.stateRoot, a.Name, host))
}

// Status is what `weft status` shows, gathered from every agent (like
// api.ClusterStatus, it says what it could not reach).
func (a *Agents) Status(ctx context.Context) (api.Status, error) {
	if a.dialer == nil {
		return api.ClusterStatus(ctx, a.stateRoot, a.Name)
	}
	hosts, err := a.dialer.AgentHosts(a.Name)
	if err != nil {
		return api.Status{}, err
	}
	clients := make(map[string]*api.Client, len(hosts))
	for _, h := range hosts {
		clients[h] = a.Client(h)
	}
	return api.Combine(a.Name, api.AskClients(ctx, clients, api.AgentTimeout))
}

// Weft runs weft with args on host's server, streaming its input and
// output, and returns its exit status. Only for Remote agents.
func (a *Agents) Weft(ctx context.Context, host string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if a.weft == nil {
		return -1, fmt.Errorf("cluster %s runs on this machine: run weft here", a.Name)
	}
	return a.weft.Weft(ctx, a.Name, host, args, stdin, stdout, stderr)
}

// Status is the named cluster's status from its agents, wherever they run.
func Status(ctx context.Context, name string, o ProviderOptions) (api.Status, error) {
	a, err := OpenAgents(name, o)
	if err != nil {
		return api.Status{}, err
	}
	defer a.Close()
	return a.Status(ctx)
}

// dialAgent is the API client of an agent reached through d.
func dialAgent(d provider.AgentDialer, cluster, host string) *api.Client {
	return api.NewClientDial(host+":agent.sock", func(ctx context.Context) (net.Conn, error) {
		return d.DialAgent(ctx, cluster, host)
	})
}
