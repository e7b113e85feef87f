package lab

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/naming"
)

// The lab's two host failures, as the failure model names them:
//
//   - a cut: the host's leg on the VPC router is down. Its processes run on
//     and talk to each other, but nothing crosses to or from other hosts.
//   - a crash: every process of the host (agent, resolver, containers) is
//     frozen with the cgroup freezer and its leg is down. Nothing answers,
//     as after a power loss, yet Restore brings it back as it was, the way a
//     host that comes back after a hang does.
//
// Both act in the router namespace and the cluster's cgroups only.

// Cut sets host's leg on the router down.
func (l *Lab) Cut(ctx context.Context, cluster, host string) error {
	return l.setLeg(ctx, cluster, host, false)
}

// Heal sets host's leg on the router up again.
func (l *Lab) Heal(ctx context.Context, cluster, host string) error {
	return l.setLeg(ctx, cluster, host, true)
}

// Crash freezes every process of host, then cuts it off.
func (l *Lab) Crash(ctx context.Context, cluster, host string) error {
	if err := validName("host", host); err != nil {
		return err
	}
	if err := cgroup.Freeze(ctx, naming.CgroupRelPath(cluster, host)); err != nil {
		return fmt.Errorf("crashing host %s: %w", host, err)
	}
	if err := l.Cut(ctx, cluster, host); err != nil {
		return fmt.Errorf("crashing host %s: %w", host, err)
	}
	return nil
}

// Restore undoes Crash or Cut: it thaws the host's processes and heals its
// leg. Restoring a healthy host changes nothing.
func (l *Lab) Restore(ctx context.Context, cluster, host string) error {
	if err := validName("host", host); err != nil {
		return err
	}
	if err := cgroup.Thaw(ctx, naming.CgroupRelPath(cluster, host)); err != nil {
		return fmt.Errorf("restoring host %s: %w", host, err)
	}
	if err := l.Heal(ctx, cluster, host); err != nil {
		return fmt.Errorf("restoring host %s: %w", host, err)
	}
	return nil
}

// Frozen reports whether host's processes are frozen (crashed).
func (l *Lab) Frozen(cluster, host string) bool {
	return cgroup.FreezerState(naming.CgroupRelPath(cluster, host)) == "FROZEN"
}

func (l *Lab) setLeg(ctx context.Context, cluster, host string, up bool) error {
	if err := validName("cluster", cluster); err != nil {
		return err
	}
	if err := validName("host", host); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	nsName := naming.RouterNetns(cluster)
	ns, err := netns.GetFromPath(netnsPath(nsName))
	if err != nil {
		return fmt.Errorf("opening router namespace %s (is cluster %s up?): %w", nsName, cluster, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("opening netlink in namespace %s: %w", nsName, err)
	}
	defer h.Close()
	name := hostVethName(cluster, host)
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("host %s of cluster %s has no leg %s on the router: %w", host, cluster, name, err)
	}
	if up {
		err = h.LinkSetUp(link)
	} else {
		err = h.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("setting leg %s of host %s up=%t: %w", name, host, up, err)
	}
	return nil
}
