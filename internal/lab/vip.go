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

// Announce replaces the route for vip/32 with one via holder.
func (a RouteAnnouncer) Announce(ctx context.Context, vip, holder netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !vip.Is4() || !holder.Is4() {
		return fmt.Errorf("announcing VIP %s via %s: both must be IPv4 addresses", vip, holder)
	}
	h, err := a.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.RouteReplace(&netlink.Route{Dst: hostRoute(vip), Gw: net.IP(holder.AsSlice())}); err != nil {
		return fmt.Errorf("routing VIP %s via %s in the router of cluster %s: %w", vip, holder, a.Cluster, err)
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

// Target is where vip is routed now: the route's gateway, or false when
// there is no route.
func (a RouteAnnouncer) Target(ctx context.Context, vip netip.Addr) (netip.Addr, bool, error) {
	if err := ctx.Err(); err != nil {
		return netip.Addr{}, false, err
	}
	h, err := a.handle()
	if err != nil {
		return netip.Addr{}, false, err
	}
	defer h.Close()
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: hostRoute(vip), Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("reading the route of VIP %s in the router of cluster %s: %w", vip, a.Cluster, err)
	}
	for _, r := range routes {
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			return gw.Unmap(), true, nil
		}
	}
	return netip.Addr{}, false, nil
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
