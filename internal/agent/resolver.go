package agent

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/weft-dev/weft/internal/dns"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/runtime"
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
	pid, started, err := runtime.EnsureDaemon(naming.HostStateDir(a.cfg.StateRoot, a.cfg.Cluster, a.self.Name),
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
// last snapshot, and with no quorum no lease expires either).
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
	var st *store.Store
	for {
		st, err = store.Connect(ctx, store.ClientURLs(boot), cfg.Cluster)
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
	mirror := st.Mirror(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-mirror.Changes():
		}
		if snap, ok := mirror.Snapshot(); ok {
			srv.SetRecords(dns.RecordsFrom(snap.Assign, snap.Status, snap.LiveHosts()))
		}
	}
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
