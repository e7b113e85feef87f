package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/firewall"
	"github.com/weft-dev/weft/internal/gateway"
	"github.com/weft-dev/weft/internal/image"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/overlay"
	"github.com/weft-dev/weft/internal/plan"
	"github.com/weft-dev/weft/internal/runtime"
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

func samePeer(x, y overlay.Peer) bool {
	return x.IP == y.IP && x.Host == y.Host && bytes.Equal(x.MAC, y.MAC)
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

func (a *Agent) reconcileOnce(ctx context.Context, st *store.Store, snap store.Snapshot, last *applied, full bool) error {
	c := snap.Spec
	if c == nil {
		return nil
	}
	local := map[string]model.Assignment{}
	for name, as := range snap.Assign {
		if as.Host == a.self.Name {
			local[name] = as
		}
	}
	recorded := map[string]bool{}
	if recs, err := a.rt.Records(a.cfg.Cluster, a.self.Name); err == nil {
		for _, r := range recs {
			recorded[r.Container] = true
		}
	}
	// Stale copies first: containers running here (or left on disk by an
	// earlier agent) that are no longer assigned here, e.g. because they
	// were moved while this host was down. They stop, and lose their links
	// and namespaces, before this pass programs peers, starts or reports
	// anything, so a returning host never runs a second instance.
	var errs []string
	for _, name := range a.staleContainers(local, recorded) {
		grace := stopGrace(c, snap, name)
		if as, ok := snap.Assign[name]; ok && as.Host != a.self.Name {
			// A copy of a container that now runs on another host (moved
			// while this host was down): it holds that instance's address
			// and MAC, so it goes at once, without a grace period.
			grace = 0
		}
		if err := a.removeContainer(ctx, st, name, snap, grace); err != nil {
			errs = append(errs, fmt.Sprintf("removing %s: %v", name, err))
		}
		delete(recorded, name)
	}

	// The firewall before any link: a container's rules exist before its
	// veth does (a veth no container owns sends nothing).
	fw := firewallConfig(c, a.handedFile(), a.self.Name, local)
	if full || !last.fwOK || !reflect.DeepEqual(fw, last.fw) {
		last.fwOK = false
		if err := a.fw.Set(ctx, fw); err != nil {
			errs = append(errs, fmt.Sprintf("firewall: %v", err))
		} else {
			last.fw, last.fwOK = fw, true
		}
	}

	hc := a.hostConfig(c)
	kernel := full || !last.ok || last.host != hc
	if kernel {
		last.ok = false
		if _, err := overlay.EnsureHost(a.hostNS, hc); err != nil {
			return fmt.Errorf("programming the overlay device: %w", err)
		}
		if err := a.ensureResolver(); err != nil {
			return err
		}
	}

	// Peers: every container on another host, towards that host's underlay
	// address as the file says (not as registered: a dead agent's containers
	// keep running and stay reachable).
	var peers []overlay.Peer
	for _, as := range snap.Assign {
		if as.Host == a.self.Name {
			continue
		}
		h, ok := c.HostByName(as.Host)
		if !ok {
			continue
		}
		mac, err := naming.ContainerMAC(as.IP)
		if err != nil {
			errs = append(errs, fmt.Sprintf("peer %s: %v", as.Container, err))
			continue
		}
		peers = append(peers, overlay.Peer{IP: as.IP, MAC: mac, Host: h.Address})
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].IP.Less(peers[j].IP) })
	if kernel || !slices.EqualFunc(peers, last.peers, samePeer) {
		res, err := overlay.SyncPeers(a.hostNS, hc, peers)
		if err != nil {
			last.ok = false
			return fmt.Errorf("programming overlay peers: %w", err)
		}
		if res.Added+res.Replaced+res.Deleted > 0 {
			a.log.Info("overlay peers synced", "added", res.Added, "replaced", res.Replaced, "deleted", res.Deleted)
		}
		last.host, last.peers, last.ok = hc, peers, true
	}

	names := make([]string, 0, len(local))
	for n := range local {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		as := local[name]
		svc, ok := serviceDef(c, snap.Rollouts, as)
		if !ok {
			continue
		}
		if err := a.ensureContainer(ctx, st, c, hc, svc, as, snap, recorded[name], full); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
		}
	}

	if full && len(errs) == 0 {
		a.collectImages()
	}

	// Re-report statuses the store lost or that another writer overwrote.
	a.mu.Lock()
	runs := make([]*containerRun, 0, len(a.containers))
	for _, r := range a.containers {
		runs = append(runs, r)
	}
	a.mu.Unlock()
	for _, r := range runs {
		cur := r.snapshot()
		if have, ok := snap.Status[cur.Container]; !ok || !sameStatus(have, cur) {
			if err := reportStatus(ctx, st, cur); err != nil {
				errs = append(errs, fmt.Sprintf("reporting %s: %v", cur.Container, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// serviceDef is the definition the assignment's container runs: the file's
// service, or during a rolling update the definition the leader kept in the
// service's rollout record (Assignment.Def). Placement fields always come
// from the file.
func serviceDef(c *spec.Cluster, rollouts map[string]model.Rollout, as model.Assignment) (spec.Service, bool) {
	svc, ok := c.ServiceByName(as.Service)
	if as.Def == "" || (ok && plan.DefHash(svc) == as.Def) {
		return svc, ok
	}
	def, found := rollouts[as.Service].Defs[as.Def]
	if !found {
		return svc, ok
	}
	if ok {
		def.Replicas, def.Host, def.Hosts, def.IP, def.DependsOn = svc.Replicas, svc.Host, svc.Hosts, svc.IP, svc.DependsOn
		def.StopGrace, def.Update = svc.StopGrace, svc.Update
	}
	return def, true
}

// stopGrace is how long a container of this host gets between SIGTERM and
// SIGKILL: its service's stop_grace, or the default for a service gone
// from the file.
func stopGrace(c *spec.Cluster, snap store.Snapshot, container string) time.Duration {
	service := ""
	if as, ok := snap.Assign[container]; ok {
		service = as.Service
	} else if st, ok := snap.Status[container]; ok {
		service = st.Service
	}
	if svc, ok := c.ServiceByName(service); ok && svc.StopGrace.Duration > 0 {
		return svc.StopGrace.Duration
	}
	return spec.DefaultStopGrace
}

// staleContainers lists the containers supervised or recorded on this host
// that are not assigned to it.
func (a *Agent) staleContainers(local map[string]model.Assignment, recorded map[string]bool) []string {
	a.mu.Lock()
	var gone []string
	for name := range a.containers {
		if _, ok := local[name]; !ok {
			gone = append(gone, name)
		}
	}
	a.mu.Unlock()
	for name := range recorded {
		if _, ok := local[name]; !ok {
			gone = append(gone, name)
		}
	}
	return dedupe(gone)
}

// statusWriteTimeout bounds one status report, so a store member that
// stopped answering delays a reconcile pass by this much at most.
const statusWriteTimeout = 3 * time.Second

// reportStatus writes a status of this host's container, guarded by its
// assignment: when the container has moved to another host meanwhile, the
// write is skipped, never overwriting the new instance's status.
func reportStatus(ctx context.Context, st *store.Store, cur model.ContainerStatus) error {
	ctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
	defer cancel()
	err := st.PutStatusAssigned(ctx, cur)
	if errors.Is(err, store.ErrNotAssignedHere) {
		return nil
	}
	return err
}

// sameSlot reports whether two assignments run the same container in the
// same place with the same definition; Home (where placement had put it),
// draining and surge do not matter to the running process.
func sameSlot(x, y model.Assignment) bool {
	x.Home, y.Home = "", ""
	x.Draining, y.Draining = time.Time{}, time.Time{}
	x.Surge, y.Surge = false, false
	return x == y
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func sameStatus(x, y model.ContainerStatus) bool {
	x.Updated, y.Updated = time.Time{}, time.Time{}
	return x == y
}

// dependenciesReady says whether every service svc depends on has a healthy
// instance somewhere in the cluster, and if not, which one is missing.
func dependenciesReady(svc spec.Service, status map[string]model.ContainerStatus) (bool, string) {
	for _, dep := range svc.DependsOn {
		ok := false
		for _, s := range status {
			if s.Service == dep && s.Ready() {
				ok = true
				break
			}
		}
		if !ok {
			return false, dep
		}
	}
	return true, ""
}

// runtimeConfig is everything the runtime needs to run one container.
// img is the service's image (zero for a host binary): its entrypoint, cmd,
// env, workdir and user are the defaults under the file's fields.
func (a *Agent) runtimeConfig(c *spec.Cluster, hc overlay.HostConfig, svc spec.Service, as model.Assignment, img image.Image) runtime.Config {
	cmd := append([]string(nil), svc.Command...)
	if len(cmd) > 0 && cmd[0] == "weft" {
		cmd[0] = a.cfg.Exe
	}
	env := map[string]string{
		"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME": "/root",
	}
	workdir, user := svc.Workdir, svc.User
	if svc.Image != "" {
		cmd = img.Argv(svc.Entrypoint, svc.Command)
		delete(env, "HOME") // the init takes it from the image's /etc/passwd
		for k, v := range img.Env() {
			env[k] = v
		}
		workdir, user = image.Or(svc.Workdir, img.Config.WorkingDir), image.Or(svc.User, img.Config.User)
	}
	for k, v := range map[string]string{
		"WEFT_CLUSTER":   c.Name,
		"WEFT_SERVICE":   svc.Name,
		"WEFT_CONTAINER": as.Container,
		"WEFT_HOST":      as.Host,
		"WEFT_IP":        as.IP.String(),
		"WEFT_DOMAIN":    c.Domain,
	} {
		env[k] = v
	}
	if isGateway(svc) {
		if cfg, err := gatewayConfig(c, svc); err == nil {
			env[gateway.ConfigEnv] = cfg
		} else {
			a.log.Warn("configuring gateway", "service", svc.Name, "err", err)
		}
	}
	for k, v := range svc.Env {
		env[k] = v
	}
	var vols []runtime.Mount
	for _, v := range svc.Volumes {
		vols = append(vols, runtime.Mount{
			HostPath: naming.VolumeDir(a.cfg.StateRoot, c.Name, as.Container, v.Name),
			Path:     v.Path,
		})
	}
	return runtime.Config{
		Cluster:    c.Name,
		Host:       a.self.Name,
		Container:  as.Container,
		Service:    svc.Name,
		Image:      img.RootFS,
		Command:    cmd,
		Env:        env,
		Workdir:    workdir,
		User:       user,
		Netns:      naming.ContainerNetns(c.Name, a.self.Name, as.Container),
		Hostname:   as.Container,
		ResolvConf: fmt.Sprintf("nameserver %s\nsearch %s\noptions ndots:1 timeout:1 attempts:3\n", hc.BridgeAddr.Addr(), c.Domain),
		Hosts:      fmt.Sprintf("127.0.0.1\tlocalhost\n%s\t%s.%s %s %s\n", as.IP, as.Container, c.Domain, as.Container, svc.Name),
		Volumes:    vols,
		Restart:    svc.Restart,
		Resources:  runtime.ResourcesOf(svc),
		UserNS:     userNSOf(c, svc),
	}
}

// userNSOf is the user namespace of the service's containers: the
// cluster's id map unless the service turned it off (`userns: false`;
// spec.Service.UserNSOn).
func userNSOf(c *spec.Cluster, svc spec.Service) runtime.IDMap {
	if !svc.UserNSOn() {
		return runtime.IDMap{}
	}
	return runtime.ClusterIDMap(c.Name)
}

func (a *Agent) containerLink(c *spec.Cluster, hc overlay.HostConfig, as model.Assignment) (overlay.ContainerLink, error) {
	mac, err := naming.ContainerMAC(as.IP)
	if err != nil {
		return overlay.ContainerLink{}, fmt.Errorf("container %s: %w", as.Container, err)
	}
	return overlay.ContainerLink{
		Container: as.Container,
		Netns:     naming.ContainerNetns(c.Name, a.self.Name, as.Container),
		Addr:      netip.PrefixFrom(as.IP, c.Overlay.CIDR.Bits()),
		MAC:       mac,
		MTU:       hc.MTU,
	}, nil
}

// ensureContainer wires the container's link and keeps one supervisor
// running for it, restarting it only when its configuration changed.
func (a *Agent) ensureContainer(ctx context.Context, st *store.Store, c *spec.Cluster, hc overlay.HostConfig, svc spec.Service, as model.Assignment, snap store.Snapshot, recorded, full bool) error {
	link, err := a.containerLink(c, hc, as)
	if err != nil {
		return err
	}
	a.mu.Lock()
	run := a.containers[as.Container]
	a.mu.Unlock()
	var img image.Image
	if svc.Image != "" {
		var err error
		if img, err = a.imageOf(ctx, c, hc, svc, link, snap.Status); err != nil {
			return a.imageMissing(ctx, st, svc, as, link, snap, run != nil || recorded, err)
		}
		a.mu.Lock()
		a.pulled[as.Container] = img.RootFS
		a.mu.Unlock()
	} else {
		a.mu.Lock()
		delete(a.pulled, as.Container)
		a.mu.Unlock()
	}
	rc := a.runtimeConfig(c, hc, svc, as, img)
	hash := rc.Hash()
	if run != nil && run.hash == hash && sameSlot(run.assign, as) {
		if !full {
			return nil
		}
		// Keep the link right even if someone deleted it by hand.
		if _, err := overlay.AttachContainer(a.hostNS, hc, link); err != nil {
			return fmt.Errorf("wiring link: %w", err)
		}
		return nil
	}
	if run != nil {
		a.log.Info("container changed, restarting", "container", as.Container, "def", as.Def)
		a.stopRun(ctx, run, svc.StopGrace.Duration)
		if run.assign.IP != as.IP {
			if err := overlay.DetachContainer(a.hostNS, as.Container, link.Netns); err != nil {
				return fmt.Errorf("removing old link: %w", err)
			}
		}
	}

	base := model.ContainerStatus{
		Container: as.Container, Service: as.Service, Host: a.self.Name,
		IP: as.IP, MAC: as.MAC, Netns: link.Netns, Def: as.Def,
	}
	// A process already running from an earlier agent is adopted even if its
	// dependencies look unhealthy right now: it was started once already.
	if !recorded {
		if ok, dep := dependenciesReady(svc, snap.Status); !ok {
			base.State = model.StateWaiting
			base.Health = model.HealthStarting
			base.Message = "waiting for a healthy instance of " + dep
			base.Updated = time.Now().UTC()
			if have, ok := snap.Status[as.Container]; !ok || !sameStatus(have, base) {
				return reportStatus(ctx, st, base)
			}
			return nil
		}
	}
	if _, err := overlay.EnsureContainerNetns(link.Netns); err != nil {
		return fmt.Errorf("creating network namespace: %w", err)
	}
	if _, err := overlay.AttachContainer(a.hostNS, hc, link); err != nil {
		return fmt.Errorf("wiring link: %w", err)
	}
	for _, v := range rc.Volumes {
		if err := ensureVolume(v.HostPath, rc.User, rc.Image, rc.UserNS, c.Name); err != nil {
			return err
		}
	}
	run = a.startRun(st, svc, as, rc, hash, base, adoptable(snap.Status, as, a.self.Name, run == nil && recorded))
	run.image = rc.Image
	a.mu.Lock()
	a.containers[as.Container] = run
	a.mu.Unlock()
	return nil
}

// adoptable is the store's status of the instance an earlier agent ran
// here, when the new agent may take it over as it is: recorded on disk, not
// supervised yet, reported from this host for the same definition, and
// ready. Otherwise nil: the container is reported starting.
func adoptable(status map[string]model.ContainerStatus, as model.Assignment, self string, recordedOnly bool) *model.ContainerStatus {
	prev, ok := status[as.Container]
	if !recordedOnly || !ok || prev.Host != self || prev.Def != as.Def || !prev.Ready() || prev.Pid == 0 {
		return nil
	}
	return &prev
}

// removeContainer stops a container no longer assigned here, removes its
// link and namespace, and withdraws its status (unless it moved and its new
// host already reports it).
func (a *Agent) removeContainer(ctx context.Context, st *store.Store, name string, snap store.Snapshot, grace time.Duration) error {
	status := snap.Status
	a.mu.Lock()
	run := a.containers[name]
	delete(a.containers, name)
	delete(a.pulled, name)
	a.mu.Unlock()
	if run != nil {
		a.stopRun(ctx, run, grace)
	}
	if err := a.rt.Stop(ctx, a.cfg.Cluster, a.self.Name, name, grace); err != nil {
		return err
	}
	if err := overlay.DetachContainer(a.hostNS, name, naming.ContainerNetns(a.cfg.Cluster, a.self.Name, name)); err != nil {
		return err
	}
	if s, ok := status[name]; ok && s.Host == a.self.Name {
		// Only a container gone from the file loses its status; one that
		// moved keeps the key for its new host to write.
		dctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
		defer cancel()
		return st.DeleteStatusUnassigned(dctx, name)
	}
	a.log.Info("container removed", "container", name)
	return nil
}
