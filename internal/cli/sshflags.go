package cli

import (
	"context"
	"net"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/cluster"
	"github.com/weft-dev/weft/internal/nsthread"
)

// sshFlags are the flags of provider ssh on up and down (and, for
// reaching the agents, on status, ps, logs, exec and restart).
type sshFlags struct {
	acceptNewHostKeys bool
	// fromNetns makes the ssh connections from inside a named network
	// namespace: the tests' servers are lab hosts, reached from the lab's
	// router namespace so that nothing routes into the lab from here.
	fromNetns string
}

func (f *sshFlags) register(cmd *cobra.Command, up bool) {
	if up {
		cmd.Flags().BoolVar(&f.acceptNewHostKeys, "accept-new-host-keys", false,
			"provider ssh: add the key of a server missing from ssh.known_hosts to it (a changed key is always refused)")
	}
	cmd.Flags().StringVar(&f.fromNetns, "ssh-from-netns", "", "provider ssh: connect to the servers from inside this named network namespace")
	_ = cmd.Flags().MarkHidden("ssh-from-netns")
}

func (f sshFlags) options(g *globals, say func(string, ...any)) cluster.ProviderOptions {
	o := cluster.ProviderOptions{StateRoot: g.stateRoot, Log: g.logger(), Say: say, AcceptNewHostKeys: f.acceptNewHostKeys}
	if ns := f.fromNetns; ns != "" {
		o.SSHDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nsthread.DialNamed(ctx, ns, &net.Dialer{}, network, addr)
		}
	}
	return o
}

// agents opens how to reach the named cluster's agents: here, or on its
// servers through ssh.
func (g *globals) agents(name string) (*cluster.Agents, error) {
	return cluster.OpenAgents(name, g.ssh.options(g, nil))
}
