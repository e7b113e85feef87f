package agent

import (
	"context"
	"slices"
	"sort"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/firewall"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/reach"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
	"github.com/weft-dev/weft/internal/vip"
)

// firewallConfig is host self's firewall from the applied file c and the
// file last handed to this host (next: its bootstrap, which `weft up`
// rewrites before it applies a file; nil when there is none). The hosts of
// both are the members, so a host the next file adds reaches etcd before
// that file is applied (`up` waits for every agent first); as for the
// overlay's peers, the file decides, not liveness: a host whose lease ran
// out keeps its containers running and must rejoin etcd. The managers are
// the etcd peers, the containers assigned to self the bridge's only
// senders. It is pure; `firewall: false` gives the zero Config, which
// removes the tables.
func firewallConfig(c, next *spec.Cluster, self string, local map[string]model.Assignment) firewall.Config {
	if !c.FirewallOn() {
		return firewall.Config{}
	}
	cfg := firewall.Config{
		VXLANPort:  uint16(c.Overlay.Port),
		ClientPort: store.ClientPort,
		PeerPort:   store.PeerPort,
		ProbePorts: []uint16{vip.ProbePort, reach.Port},
		DNSPort:    resolverPort,
		Bridge:     c.Overlay.Bridge,
		BridgeAddr: c.HostOverlayAddr(self),
	}
	for _, file := range []*spec.Cluster{c, next} {
		if file == nil {
			continue
		}
		for _, h := range file.Hosts {
			if !slices.Contains(cfg.Members, h.Address) {
				cfg.Members = append(cfg.Members, h.Address)
			}
			if h.IsManager() && !slices.Contains(cfg.Managers, h.Address) {
				cfg.Managers = append(cfg.Managers, h.Address)
			}
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
	if err := a.fw.Init(ctx, firewallConfig(a.boot, nil, a.self.Name, nil)); err != nil {
		a.log.Warn("setting up the host firewall", "err", err)
	}
}

// handedFile is the file last handed to this host (its bootstrap as `weft
// up` rewrote it), read again on every pass; nil when it cannot be read.
func (a *Agent) handedFile() *spec.Cluster {
	c, err := readBootstrap(a.cfg.StateRoot, a.cfg.Cluster, a.cfg.Host)
	if err != nil {
		a.log.Warn("reading the bootstrap file for the firewall's members", "err", err)
		return nil
	}
	return c
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
