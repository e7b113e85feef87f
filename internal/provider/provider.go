// Package provider says what a provider of hosts does for a cluster: make
// the hosts of a cluster file exist, start the agent of a host, and remove
// everything of a cluster again. internal/lab is the one provider today (the
// hosts are network namespaces of this machine); internal/cluster brings a
// cluster up and down through this interface alone.
//
// It is a package of its own, apart from internal/cluster, so that a
// provider can name the results below without importing the bring-up.
package provider

import (
	"context"
	"io"
	"net"
	"net/netip"

	"github.com/weft-dev/weft/internal/spec"
)

// Provider makes and removes the hosts of clusters.
type Provider interface {
	// Exists says whether anything of the cluster exists.
	Exists(cluster string) (bool, error)
	// Ensure makes the hosts of c exist and reach each other over the
	// underlay. It is idempotent: what already matches is left alone.
	Ensure(ctx context.Context, c *spec.Cluster) (map[string]HostInfo, error)
	// StartAgent makes sure the agent of host runs (exe with args), kept
	// running after the caller exits; a running one is left alone.
	StartAgent(ctx context.Context, cluster, host, exe string, args []string) (pid int, err error)
	// Run runs argv on host (in its network namespace, as root) with
	// stdin, and returns its combined output; a non-zero exit is an error
	// that carries the output.
	Run(ctx context.Context, cluster, host string, argv []string, stdin io.Reader) (output []byte, err error)
	// Destroy removes everything of the cluster; it is safe when nothing
	// exists and never touches another cluster.
	Destroy(ctx context.Context, cluster string, keepVolumes bool) (Removed, error)
}

// AgentDialer is implemented by a provider whose agents' API sockets are
// not on this machine (ssh: on the servers); the bring-up reaches an agent
// through DialAgent instead of the socket under the local state root.
type AgentDialer interface {
	DialAgent(ctx context.Context, cluster, host string) (net.Conn, error)
	// AgentHosts lists the hosts of a cluster this machine brought up.
	AgentHosts(cluster string) ([]string, error)
}

// ChangeCounter is implemented by a provider that counts what it changed
// on the hosts since it was made (ssh: files copied, units written, agents
// started): a second `weft up` of an unchanged file reports 0.
type ChangeCounter interface {
	Changes() int
}

// HostInfo is one host as Ensure left it.
type HostInfo struct {
	Name, Netns, Subnet string     // Netns: its network namespace, where the provider makes hosts of namespaces (the lab)
	Address             netip.Addr // underlay address on eth0
	MTU                 int        // underlay MTU
}

// Removed is what Destroy took away.
type Removed struct {
	Namespaces []string // named network namespaces deleted
	Processes  int      // processes killed (agents and containers)
	StateDir   bool     // the state directory (or all of it but volumes) was removed
}
