package agent

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/image"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/overlay"
	"github.com/weft-dev/weft/internal/plan"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// ensureContainers keeps every container assigned to this host running
// with its current definition, in the order of their names.
func (a *Agent) ensureContainers(ctx context.Context, st statusStore, p *pass) {
	for _, name := range slices.Sorted(maps.Keys(p.local)) {
		as := p.local[name]
		svc, ok := serviceDef(p.c, p.snap.Rollouts, as)
		if !ok {
			continue
		}
		if err := a.ensureContainer(ctx, st, p.c, p.hc, svc, as, p.snap, p.recorded[name], p.full); err != nil {
			p.fail("%s: %v", name, err)
		}
	}
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

// sameSlot reports whether two assignments run the same container in the
// same place with the same definition; Home (where placement had put it),
// draining and surge do not matter to the running process.
func sameSlot(x, y model.Assignment) bool {
	x.Home, y.Home = "", ""
	x.Draining, y.Draining = time.Time{}, time.Time{}
	x.Surge, y.Surge = false, false
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
func (a *Agent) ensureContainer(ctx context.Context, st statusStore, c *spec.Cluster, hc overlay.HostConfig, svc spec.Service, as model.Assignment, snap store.Snapshot, recorded, full bool) error {
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
		if err := a.kernel.AttachContainer(hc, link); err != nil {
			return fmt.Errorf("wiring link: %w", err)
		}
		return nil
	}
	if run != nil {
		a.log.Info("container changed, restarting", "container", as.Container, "def", as.Def)
		a.stopRun(ctx, run, svc.StopGrace.Duration)
		if run.assign.IP != as.IP {
			if err := a.kernel.DetachContainer(as.Container, link.Netns); err != nil {
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
	if err := a.kernel.EnsureContainerNetns(link.Netns); err != nil {
		return fmt.Errorf("creating network namespace: %w", err)
	}
	if err := a.kernel.AttachContainer(hc, link); err != nil {
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
