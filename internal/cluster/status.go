package cluster

import (
	"context"
	"io"
	"net"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/provider"
	sshprov "github.com/weft-dev/weft/internal/provider/ssh"
)

// Status is what `weft status` shows of the named cluster, from its agents
// wherever they run: their sockets under this machine's state root (the
// lab), or through the ssh connections to its servers (provider ssh). Like
// api.ClusterStatus it says what it could not reach.
func Status(ctx context.Context, name string, o ProviderOptions) (api.Status, error) {
	if !sshprov.HasRecord(o.StateRoot, name) {
		return api.ClusterStatus(ctx, o.StateRoot, name)
	}
	p, err := ProviderOf(name, o)
	if err != nil {
		return api.Status{}, err
	}
	if c, ok := p.(io.Closer); ok {
		defer c.Close()
	}
	d, ok := p.(provider.AgentDialer)
	if !ok {
		return api.ClusterStatus(ctx, o.StateRoot, name)
	}
	hosts, err := d.AgentHosts(name)
	if err != nil {
		return api.Status{}, err
	}
	clients := make(map[string]*api.Client, len(hosts))
	for _, h := range hosts {
		clients[h] = dialAgent(d, name, h)
	}
	return api.Combine(name, api.AskClients(ctx, clients, api.AgentTimeout))
}

// dialAgent is the API client of an agent reached through d.
func dialAgent(d provider.AgentDialer, cluster, host string) *api.Client {
	return api.NewClientDial(host+":agent.sock", func(ctx context.Context) (net.Conn, error) {
		return d.DialAgent(ctx, cluster, host)
	})
}
