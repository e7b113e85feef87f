package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/firewall"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/overlay"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// reconcileLoop makes this host match the store: firewall, overlay device
// and peer entries, local containers, DNS answers, reported statuses.
func (a *Agent) reconcileLoop(ctx context.Context, st *store.Store) error {
	mirror := st.Mirror(ctx)
	tick := time.NewTicker(resyncInterval)
	defer tick.Stop()
	var last applied
	vet := &vetter{cluster: a.cfg.Cluster, keep: true, log: a.log}
	for {
		full := false
		select {
		case <-ctx.Done():
			return nil
		case <-mirror.Changes():
			// Let a burst of changes (a whole placement, many health
			// reports) land before acting on it.
			sleepCtx(ctx, coalesceDelay)
		case <-a.kick:
		case <-tick.C:
			full = true
		}
		snap, ok := mirror.Snapshot()
		if !ok {
			continue
		}
		snap, _ = vet.vetSnapshot(snap)
		if err := a.reconcileOnce(ctx, st, snap, &last, full); err != nil && ctx.Err() == nil {
			a.log.Warn("reconciling host", "err", err)
		}
	}
}

// applied is what the reconcile loop last made the kernel match. A pass
// caused by a store change skips the kernel when its part did not change
// (most changes are health reports); the periodic full pass checks the
// kernel anyway and repairs drift.
type applied struct {
	host  overlay.HostConfig
	peers []overlay.Peer
	ok    bool
	fw    firewall.Config
	fwOK  bool
}

// coalesceDelay is how long a reader waits after a change for the rest of
// its burst.
const coalesceDelay = 20 * time.Millisecond

func (a *Agent) hostConfig(c *spec.Cluster) overlay.HostConfig {
	u := a.underlay(c)
	return overlay.HostConfig{
		VNI:           c.Overlay.VNI,
		Port:          c.Overlay.Port,
		MTU:           overlayMTU(c, u),
		Bridge:        c.Overlay.Bridge,
		BridgeAddr:    netip.PrefixFrom(c.HostOverlayAddr(a.self.Name), c.Overlay.CIDR.Bits()),
		LocalAddr:     a.self.Address,
		UnderlayIface: u.Name,
	}
}

// pass is one reconcile pass: the snapshot it makes this host match, what
// it found on the host, and the errors of the steps it goes on after.
type pass struct {
	snap     store.Snapshot
	c        *spec.Cluster
	hc       overlay.HostConfig
	full     bool                        // the periodic pass: check the kernel even when nothing changed
	local    map[string]model.Assignment // the containers assigned to this host
	recorded map[string]bool             // the containers with a record on this host (this or an earlier agent ran them)
	errs     []string
}

func (a *Agent) newPass(snap store.Snapshot, full bool) *pass {
	p := &pass{
		snap: snap, c: snap.Spec, hc: a.hostConfig(snap.Spec), full: full,
		local: map[string]model.Assignment{}, recorded: map[string]bool{},
	}
	for name, as := range snap.Assign {
		if as.Host == a.self.Name {
			p.local[name] = as
		}
	}
	if recs, err := a.rt.Records(a.cfg.Cluster, a.self.Name); err == nil {
		for _, r := range recs {
			p.recorded[r.Container] = true
		}
	}
	return p
}

// fail notes an error the pass goes on after.
func (p *pass) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Sprintf(format, args...))
}

func (p *pass) err() error {
	if len(p.errs) > 0 {
		return fmt.Errorf("%s", strings.Join(p.errs, "; "))
	}
	return nil
}

// reconcileOnce makes this host match snap, in this order:
//
//   - Stale copies first (removeStale): containers running here (or left
//     on disk by an earlier agent) that are no longer assigned here, e.g.
//     because they were moved while this host was down. They stop, and
//     lose their links and namespaces, before this pass programs peers,
//     starts or reports anything, so a returning host never runs a second
//     instance.
//   - The firewall before any link (programFirewall): a container's rules
//     exist before its veth does (a veth no container owns sends nothing).
//   - The overlay device and the resolver (programHost), then the peers
//     (programPeers); an error of either ends the pass.
//   - The local containers (ensureContainers), then the statuses the store
//     lost (reportStatuses).
func (a *Agent) reconcileOnce(ctx context.Context, st statusStore, snap store.Snapshot, last *applied, full bool) error {
	if snap.Spec == nil {
		return nil
	}
	p := a.newPass(snap, full)
	a.removeStale(ctx, st, p)
	a.programFirewall(ctx, p, last)
	if err := a.programHost(p, last); err != nil {
		return err
	}
	if err := a.programPeers(p, last); err != nil {
		return err
	}
	a.ensureContainers(ctx, st, p)
	if full && len(p.errs) == 0 {
		a.collectImages()
	}
	a.reportStatuses(ctx, st, p)
	return p.err()
}
