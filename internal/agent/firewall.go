package agent

import (
	"context"
	"sort"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/firewall"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
	"github.com/weft-dev/weft/internal/vip"
)

// firewallConfig is host self's firewall: the file's hosts are the members
// (as for the overlay's peers, the file decides, not liveness: a host whose
// lease ran out keeps its containers running and must rejoin etcd), its
// managers the etcd peers, and the containers assigned to self are the
// bridge's only senders. It is pure; a file with `firewall: false` gives
// the zero Config, which removes the tables.
func firewallConfig(c *spec.Cluster, self string, local map[string]model.Assignment) firewall.Config {
	if !c.FirewallOn() {
		return firewall.Config{}
	}
	cfg := firewall.Config{
		VXLANPort:  uint16(c.Overlay.Port),
		ClientPort: store.ClientPort,
		PeerPort:   store.PeerPort,
		ProbePort:  vip.ProbePort,
		DNSPort:    resolverPort,
		Bridge:     c.Overlay.Bridge,
		BridgeAddr: c.HostOverlayAddr(self),
	}
	for _, h := range c.Hosts {
		cfg.Members = append(cfg.Members, h.Address)
		if h.IsManager() {
			cfg.Managers = append(cfg.Managers, h.Address)
		}
	}
	if c.Provider == "lab" {
		// The lab router's own sockets (the chaos runner reads the store
		// from there, out of reach of the faults it injects) may use the
		// etcd client port; traffic it only routes keeps its source.
		for _, s := range c.Network.Subnets {
			cfg.Operators = append(cfg.Operators, c.RouterAddr(s.Name))
		}
	}
	for name, as := range local {
		cfg.Containers = append(cfg.Containers, firewall.Container{
			Name: name, Veth: naming.HostVeth(name), IP: as.IP, MAC: naming.MACFromIP(as.IP),
		})
	}
	sort.Slice(cfg.Containers, func(i, j int) bool { return cfg.Containers[i].Name < cfg.Containers[j].Name })
	return cfg
}

// initFirewall closes the host before its etcd member listens, from the
// file alone, unless an earlier agent left a firewall for running
// containers (the reconcile loop brings it up to date).
func (a *Agent) initFirewall(ctx context.Context) {
	if err := a.fw.Init(ctx, firewallConfig(a.boot, a.self.Name, nil)); err != nil {
		a.log.Warn("setting up the host firewall", "err", err)
	}
}

// firewallStatus is this host's firewall for `weft status`.
func (a *Agent) firewallStatus(ctx context.Context) *api.FirewallStatus {
	st := a.fw.Status(ctx)
	out := &api.FirewallStatus{On: st.On, Error: st.Error}
	if st.On {
		out.Dropped = map[string]uint64{}
		for _, name := range firewall.CounterNames() {
			out.Dropped[name] = st.Dropped[name].Packets
		}
	}
	return out
}
