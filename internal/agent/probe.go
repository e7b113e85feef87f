package agent

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/weft-dev/weft/internal/spec"
)

// probePeers probes the other hosts over the underlay from the agent
// (internal/reach; the resolvers answer), until ctx ends. The placement
// leader reads when it last heard from a host that went down: a dead etcd
// leader's lease outlives it by the election of the next one, but its
// silence on the underlay starts at once (plan.NextDown).
func (a *Agent) probePeers(ctx context.Context) {
	var lc net.ListenConfig
	conn, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(a.self.Address, 0).String())
	if err != nil {
		a.log.Warn("probing the other hosts: down hosts are timed from their lease alone", "err", err)
		return
	}
	a.peers.SetPeers(reachPeers(a.boot, a.self.Name))
	if err := a.peers.Run(ctx, conn); err != nil {
		a.log.Warn("probing the other hosts", "err", err)
	}
}

// lastHeard is, for the hosts of c this host cannot reach, when it last
// heard from them; nothing when it reaches no majority of the etcd members'
// hosts (then it is the one cut off, and its silence says nothing of them).
func (a *Agent) lastHeard(c *spec.Cluster) map[string]time.Time {
	if a.peers == nil {
		return nil
	}
	a.peers.SetPeers(reachPeers(c, a.self.Name))
	if !reachesQuorum(c, a.self.Name, a.peers.Unreachable()) {
		return nil
	}
	return a.peers.SilentSince()
}
