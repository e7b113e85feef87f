package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/naming"
)

// RouteAnnouncer moves a cluster's VIPs the way seed 001 moves its VPC
// route: one /32 route per VIP in the router namespace, via the holder's
// underlay address, replaced in one netlink call. It implements
// vip.Announcer and works from any namespace of the machine (agents run in
// their host namespace): it opens the router's by path.
type RouteAnnouncer struct {
	Cluster string
}

func (a RouteAnnouncer) handle() (*netlink.Handle, error) {
	if err := validName("cluster", a.Cluster); err != nil {
		return nil, err
	}
	name := naming.RouterNetns(a.Cluster)
	ns, err := netns.GetFromPath(netnsPath(name))
	if err != nil {
		return nil, fmt.Errorf("opening router namespace %s (is cluster %s up?): %w", name, a.Cluster, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("opening netlink in namespace %s: %w", name, err)
	}
	return h, nil
}

func hostRoute(vip netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(vip.AsSlice()), Mask: net.CIDRMask(32, 32)}
}

// Announce replaces the route for vip/32 with one via holders: a single
// gateway for one, a multipath route for several (the kernel spreads flows
// over them), no route for none.
func (a RouteAnnouncer) Announce(ctx context.Context, vip netip.Addr, holders ...netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !vip.Is4() {
		return fmt.Errorf("announcing VIP %s: not an IPv4 address", vip)
	}
	for _, h := range holders {
		if !h.Is4() {
			return fmt.Errorf("announcing VIP %s via %s: not an IPv4 address", vip, h)
		}
	}
	h, err := a.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	route := &netlink.Route{Dst: hostRoute(vip)}
	switch len(holders) {
	case 0:
		if err := h.RouteDel(route); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("removing the route of VIP %s in the router of cluster %s: %w", vip, a.Cluster, err)
		}
		return nil
	case 1:
		route.Gw = net.IP(holders[0].AsSlice())
	default:
		for _, gw := range holders {
			route.MultiPath = append(route.MultiPath, &netlink.NexthopInfo{Gw: net.IP(gw.AsSlice())})
		}
	}
	if err := h.RouteReplace(route); err != nil {
		return fmt.Errorf("routing VIP %s via %v in the router of cluster %s: %w", vip, holders, a.Cluster, err)
	}
	return nil
}

// Withdraw deletes the route for vip/32 if it goes via holder.
func (a RouteAnnouncer) Withdraw(ctx context.Context, vip, holder netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := a.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	err = h.RouteDel(&netlink.Route{Dst: hostRoute(vip), Gw: net.IP(holder.AsSlice())})
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("removing the route of VIP %s via %s in the router of cluster %s: %w", vip, holder, a.Cluster, err)
	}
	return nil
}

// Target is where vip is routed now: the route's (first) gateway, or false
// when there is no route.
func (a RouteAnnouncer) Target(ctx context.Context, vip netip.Addr) (netip.Addr, bool, error) {
	all, err := a.Targets(ctx, vip)
	if err != nil || len(all) == 0 {
		return netip.Addr{}, false, err
	}
	return all[0], true, nil
}

// Targets lists every gateway of vip's route (several for a multipath
// route), none when there is no route.
func (a RouteAnnouncer) Targets(ctx context.Context, vip netip.Addr) ([]netip.Addr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := a.handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: hostRoute(vip), Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("reading the route of VIP %s in the router of cluster %s: %w", vip, a.Cluster, err)
	}
	var out []netip.Addr
	for _, r := range routes {
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			out = append(out, gw.Unmap())
		}
		for _, nh := range r.MultiPath {
			if gw, ok := netip.AddrFromSlice(nh.Gw); ok {
				out = append(out, gw.Unmap())
			}
		}
	}
	return out, nil
}

// LegUp reports whether host's leg on the router is up (false after Cut or
// Crash).
func (a RouteAnnouncer) LegUp(host string) (bool, error) {
	if err := validName("host", host); err != nil {
		return false, err
	}
	h, err := a.handle()
	if err != nil {
		return false, err
	}
	defer h.Close()
	link, err := h.LinkByName(hostVethName(a.Cluster, host))
	if err != nil {
		return false, fmt.Errorf("host %s of cluster %s has no leg on the router: %w", host, a.Cluster, err)
	}
	return link.Attrs().Flags&net.FlagUp != 0, nil
}
