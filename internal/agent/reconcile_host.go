package agent

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/overlay"
)

// programFirewall sets the host's firewall for the pass's local containers,
// when it changed or on a full pass.
func (a *Agent) programFirewall(ctx context.Context, p *pass, last *applied) {
	fw := firewallConfig(p.c, a.handedFile(), a.self.Name, p.local)
	if !p.full && last.fwOK && reflect.DeepEqual(fw, last.fw) {
		return
	}
	last.fwOK = false
	if err := a.fw.Set(ctx, fw); err != nil {
		p.fail("firewall: %v", err)
		return
	}
	last.fw, last.fwOK = fw, true
}

// programHost makes the overlay device and the bridge match the file and
// keeps the resolver running, when the host's config changed, the last
// pass failed, or on a full pass. It leaves last not ok, so programPeers
// syncs the peers after it.
func (a *Agent) programHost(p *pass, last *applied) error {
	if !p.full && last.ok && last.host == p.hc {
		return nil
	}
	last.ok = false
	if err := a.kernel.EnsureHost(p.hc); err != nil {
		return fmt.Errorf("programming the overlay device: %w", err)
	}
	return a.ensureResolver()
}

// programPeers syncs the device's entries towards the other hosts'
// containers, when they changed or the host was programmed this pass.
func (a *Agent) programPeers(p *pass, last *applied) error {
	peers := a.peersOf(p)
	if last.ok && slices.EqualFunc(peers, last.peers, samePeer) {
		return nil
	}
	res, err := a.kernel.SyncPeers(p.hc, peers)
	if err != nil {
		last.ok = false
		return fmt.Errorf("programming overlay peers: %w", err)
	}
	if res.Changed() {
		a.log.Info("overlay peers synced", "added", res.Added, "replaced", res.Replaced, "deleted", res.Deleted)
	}
	last.host, last.peers, last.ok = p.hc, peers, true
	return nil
}

// peersOf is every container on another host, towards that host's underlay
// address as the file says (not as registered: a dead agent's containers
// keep running and stay reachable), sorted by address.
func (a *Agent) peersOf(p *pass) []overlay.Peer {
	var peers []overlay.Peer
	for _, as := range p.snap.Assign {
		if as.Host == a.self.Name {
			continue
		}
		h, ok := p.c.HostByName(as.Host)
		if !ok {
			continue
		}
		mac, err := naming.ContainerMAC(as.IP)
		if err != nil {
			p.fail("peer %s: %v", as.Container, err)
			continue
		}
		peers = append(peers, overlay.Peer{IP: as.IP, MAC: mac, Host: h.Address})
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].IP.Less(peers[j].IP) })
	return peers
}

func samePeer(x, y overlay.Peer) bool {
	return x.IP == y.IP && x.Host == y.Host && bytes.Equal(x.MAC, y.MAC)
}
