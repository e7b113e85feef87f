package agent

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/weft-dev/weft/internal/spec"
)

// probePeers asks the witnesses (the managers' resolvers, internal/reach)
// for their digests every interval from the agent, until ctx ends; only
// managers do, as only they campaign for placement leader. The leader reads
// when a host that went down was last heard: a dead etcd leader's lease
// outlives it by the election of the next one, but its silence on the
// underlay starts at once (plan.NextDown). The agent's queries do not count
// as its host alive: the resolver's heartbeats do.
func (a *Agent) probePeers(ctx context.Context) {
	if !a.isManager() {
		return
	}
	var lc net.ListenConfig
	conn, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(a.self.Address, 0).String())
	if err != nil {
		a.log.Warn("asking the witnesses: down hosts are timed from their lease alone", "err", err)
		return
	}
	a.peers.SetWitnesses(witnessesOf(a.boot))
	if err := a.peers.Run(ctx, conn); err != nil {
		a.log.Warn("asking the witnesses", "err", err)
	}
}

// lastHeard is, for the hosts of c that are unreachable, when they were last
// heard; nothing when this host reaches no majority of the managers (then it
// is the one cut off, and its silence says nothing of them).
func (a *Agent) lastHeard(c *spec.Cluster) map[string]time.Time {
	if a.peers == nil {
		return nil
	}
	a.peers.SetWitnesses(witnessesOf(c))
	return a.peers.SilentSince()
}
