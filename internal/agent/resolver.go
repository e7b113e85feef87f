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
// last snapshot, and with no quorum no lease expires either). It also leaves
// out the instances of hosts that are unreachable (reach.Monitor: a manager
// it cannot reach, another host every quorate witness finds silent): their
// names go within about a second of a cut or a crash, even when the store
// takes longer to call the host down (the host carried the etcd leader).
// When it reaches no majority of the managers (quorum lost, or this host cut
// off) no host is unreachable and every last known answer stays. On a
// manager the resolver is also a witness (internal/reach).
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
	peers := reach.NewMonitor(cfg.Host, reach.Heartbeat, reach.Interval, reach.MissLimit)
	witness, err := startReach(ctx, boot, cfg, peers)
	if err != nil {
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
		peers.SetWitnesses(witnessesOf(c))
		if witness != nil {
			witness.SetHosts(hostAddrs(c), managerNames(c))
		}
		live := reachableLive(snap.LiveHosts(), peers.Unreachable())
		if records := dns.RecordsFrom(snap.Assign, snap.Status, live); !maps.EqualFunc(records, served, slices.Equal) {
			srv.SetRecords(records)
			served = records
		}
	}
}

// startReach sends this host's heartbeats to the witnesses (the managers'
// resolvers) from its underlay address and reads their digests; on a
// manager it is a witness too, taking every host's heartbeats on reach.Port
// (the witness is returned, nil on other hosts).
func startReach(ctx context.Context, boot *spec.Cluster, cfg Config, peers *reach.Monitor) (*reach.Witness, error) {
	self, ok := boot.HostByName(cfg.Host)
	if !ok {
		return nil, fmt.Errorf("host %s is not in its bootstrap file (run `weft up` again)", cfg.Host)
	}
	var lc net.ListenConfig
	var witness *reach.Witness
	if self.IsManager() {
		srv, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(self.Address, reach.Port).String())
		if err != nil {
			return nil, fmt.Errorf("taking heartbeats on %s:%d: %w", self.Address, reach.Port, err)
		}
		witness = reach.NewWitness(cfg.Host, reach.Interval, reach.MissLimit)
		witness.SetHosts(hostAddrs(boot), managerNames(boot))
		go func() {
			if err := witness.Serve(ctx, srv); err != nil {
				cfg.Log.Warn("taking heartbeats", "err", err)
			}
		}()
	}
	conn, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(self.Address, 0).String())
	if err != nil {
		return nil, fmt.Errorf("sending heartbeats from %s: %w", self.Address, err)
	}
	peers.SetWitnesses(witnessesOf(boot))
	go func() {
		if err := peers.Run(ctx, conn); err != nil {
			cfg.Log.Warn("sending heartbeats to the managers", "err", err)
		}
	}()
	return witness, nil
}

// witnessesOf is every manager of c with an address, at its witness port.
func witnessesOf(c *spec.Cluster) map[string]netip.AddrPort {
	out := map[string]netip.AddrPort{}
	for _, h := range c.Managers() {
		if h.Address.IsValid() {
			out[h.Name] = netip.AddrPortFrom(h.Address, reach.Port)
		}
	}
	return out
}

// hostAddrs is every host of c: name -> underlay address.
func hostAddrs(c *spec.Cluster) map[string]netip.Addr {
	out := make(map[string]netip.Addr, len(c.Hosts))
	for _, h := range c.Hosts {
		out[h.Name] = h.Address
	}
	return out
}

// managerNames is the names of c's managers, in file order.
func managerNames(c *spec.Cluster) []string {
	var out []string
	for _, h := range c.Managers() {
		out = append(out, h.Name)
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
