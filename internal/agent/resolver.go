package agent

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/dns"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/reach"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// resolverPort is the port the host's resolver serves DNS on (UDP and TCP),
// on its bridge address; the firewall lets containers reach only this.
const resolverPort = 53

// resolverDaemon is the name of the host's DNS resolver process.
const resolverDaemon = "resolver"

// ensureResolver keeps the host's resolver process running. It is a process
// of its own, not part of the agent, so names keep resolving while an agent
// is dead or restarting.
func (a *Agent) ensureResolver() error {
	argv := []string{a.cfg.Exe, "resolver", "--cluster", a.cfg.Cluster, "--host", a.self.Name, "--state-root", a.cfg.StateRoot}
	pid, started, err := a.rt.EnsureDaemon(naming.HostStateDir(a.cfg.StateRoot, a.cfg.Cluster, a.self.Name),
		naming.CgroupRelPath(a.cfg.Cluster, a.self.Name, resolverDaemon), resolverDaemon, argv)
	if err != nil {
		return fmt.Errorf("starting the DNS resolver: %w", err)
	}
	if started {
		a.log.Info("DNS resolver started", "pid", pid)
	}
	return nil
}

// RunResolver serves the host's DNS on its bridge address from the store:
// healthy instances on live hosts only, updated on every store change. It
// keeps its last answers while the store is unreachable (the mirror keeps its
// last snapshot, and with no quorum no lease expires either). While it
// reaches a majority of the etcd members' hosts (its own counted), it also
// leaves out the instances of hosts it cannot reach (reach.Monitor): their
// names go within about a second of a cut or a crash, even when the store
// takes longer to call the host down (the host carried the etcd leader).
// When it reaches no majority (quorum lost, or this host cut off) every
// last known answer stays.
func RunResolver(ctx context.Context, cfg Config) error {
	trimMemory()
	boot, err := readBootstrap(cfg.StateRoot, cfg.Cluster, cfg.Host)
	if err != nil {
		return err
	}
	listen := netip.AddrPortFrom(boot.HostOverlayAddr(cfg.Host), resolverPort).String()
	srv := dns.New(boot.Domain, cfg.Log)
	if err := srv.Start(ctx, listen); err != nil {
		return fmt.Errorf("starting the DNS resolver on %s: %w", listen, err)
	}
	defer srv.Close()
	creds, err := storeCreds(cfg)
	if err != nil {
		return err
	}
	var st *store.Store
	for {
		st, err = store.Connect(ctx, store.ClientURLs(boot), creds, cfg.Cluster)
		if err == nil {
			break
		}
		cfg.Log.Warn("resolver connecting to the store", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	defer st.Close()
	go keepPresence(ctx, cfg, st)
	peers := reach.NewMonitor(reach.Interval, reach.MissLimit)
	if err := startReach(ctx, boot, cfg, peers); err != nil {
		return err
	}
	mirror := st.Mirror(ctx)
	vet := &vetter{cluster: cfg.Cluster, keep: true, log: cfg.Log}
	var unreachable map[string]bool
	var served map[string][]netip.Addr
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-mirror.Changes():
		case <-peers.Changes():
			if now := peers.Unreachable(); !maps.Equal(now, unreachable) {
				cfg.Log.Info("hosts this host cannot reach", "hosts", slices.Sorted(maps.Keys(now)))
				unreachable = now
			}
		}
		snap, ok := mirror.Snapshot()
		if !ok {
			continue
		}
		snap, _ = vet.vetSnapshot(snap)
		c := cmp.Or(snap.Spec, boot)
		peers.SetPeers(reachPeers(c, cfg.Host))
		live := snap.LiveHosts()
		if down := peers.Unreachable(); reachesQuorum(c, cfg.Host, down) {
			live = reachableLive(live, down)
		}
		if records := dns.RecordsFrom(snap.Assign, snap.Status, live); !maps.EqualFunc(records, served, slices.Equal) {
			srv.SetRecords(records)
			served = records
		}
	}
}

// reachesQuorum says whether self reaches a majority of the etcd members'
// hosts of c (itself counted when it is one), unreachable being the hosts
// it cannot reach. Only then is its reachability view the live cluster's:
// a host that reaches no majority is cut off itself, or the cluster lost
// quorum, and its last answers are the best it has.
func reachesQuorum(c *spec.Cluster, self string, unreachable map[string]bool) bool {
	managers := c.Managers()
	reached := 0
	for _, h := range managers {
		if h.Name == self || !unreachable[h.Name] {
			reached++
		}
	}
	return reached*2 > len(managers)
}

// startReach answers the other hosts' reachability probes on this host's
// underlay address, and probes them from it.
func startReach(ctx context.Context, boot *spec.Cluster, cfg Config, peers *reach.Monitor) error {
	self, ok := boot.HostByName(cfg.Host)
	if !ok {
		return fmt.Errorf("host %s is not in its bootstrap file (run `weft up` again)", cfg.Host)
	}
	var lc net.ListenConfig
	srv, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(self.Address, reach.Port).String())
	if err != nil {
		return fmt.Errorf("answering reachability probes on %s:%d: %w", self.Address, reach.Port, err)
	}
	probe, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(self.Address, 0).String())
	if err != nil {
		srv.Close()
		return fmt.Errorf("probing the other hosts from %s: %w", self.Address, err)
	}
	peers.SetPeers(reachPeers(boot, cfg.Host))
	go func() {
		if err := reach.Serve(ctx, srv); err != nil {
			cfg.Log.Warn("answering reachability probes", "err", err)
		}
	}()
	go func() {
		if err := peers.Run(ctx, probe); err != nil {
			cfg.Log.Warn("probing the other hosts", "err", err)
		}
	}()
	return nil
}

// reachPeers is every host of c but self, at its probe port.
func reachPeers(c *spec.Cluster, self string) map[string]netip.AddrPort {
	out := make(map[string]netip.AddrPort, len(c.Hosts))
	for _, h := range c.Hosts {
		if h.Name != self && h.Address.IsValid() {
			out[h.Name] = netip.AddrPortFrom(h.Address, reach.Port)
		}
	}
	return out
}

// reachableLive is live without the hosts this host cannot reach.
func reachableLive(live, unreachable map[string]bool) map[string]bool {
	out := make(map[string]bool, len(live))
	for h := range live {
		if !unreachable[h] {
			out[h] = true
		}
	}
	return out
}

// keepPresence registers the host as alive under the resolver's own lease,
// so a killed or restarting agent does not make its host's instances leave
// DNS; a cut off or frozen host loses this lease and its agent's alike.
func keepPresence(ctx context.Context, cfg Config, st *store.Store) {
	p := store.Presence{Host: cfg.Host, Pid: os.Getpid(), Since: time.Now().UTC()}
	for {
		err := st.RegisterPresence(ctx, p, hostLeaseTTL)
		if err == nil {
			return
		}
		cfg.Log.Warn("registering the host's presence", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}
