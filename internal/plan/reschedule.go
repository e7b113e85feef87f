package plan

import (
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// Liveness is what the leader knows about the hosts at one moment.
type Liveness struct {
	Now time.Time
	// Live holds the hosts whose registration is present in the store.
	Live map[string]bool
	// DownSince holds, for each host of the file that is not live, since
	// when it has been silent (NextDown keeps it).
	DownSince map[string]time.Time
}

// NextDown updates the down-since times: a host of the file that is not live
// keeps its time, or, if it was not down before, is down since its last
// renewal, which was at least silence (the registration's lease time) before
// now, when its registration was seen gone; live hosts and hosts no longer
// in the file are dropped. A new etcd leader extends every lease, so the
// real last renewal can be much earlier (when the dead host carried the
// etcd leader); heard holds, for the hosts the leader's own host cannot
// reach over the underlay, when it last heard from them (internal/reach),
// and an earlier time there is taken. Either way the clock never runs fast:
// the host was silent on both paths since then.
func NextDown(c *spec.Cluster, live map[string]bool, prev map[string]time.Time, now time.Time, silence time.Duration, heard map[string]time.Time) map[string]time.Time {
	next := map[string]time.Time{}
	for _, h := range c.Hosts {
		if live[h.Name] {
			continue
		}
		since, ok := prev[h.Name]
		if !ok {
			since = now.Add(-silence)
		}
		if last, ok := heard[h.Name]; ok && last.Before(since) {
			since = last
		}
		next[h.Name] = since
	}
	return next
}

// Reschedule moves containers off hosts that have been down for at least
// their service's reschedule_after onto live hosts, and says when to look
// again (the earliest time another container becomes due; zero when none).
//
// A moved container keeps its name, address and MAC and records the host
// placement put it on as Home (kept through further moves). Containers of
// services with `reschedule: false` (by default those with volumes) stay.
// The target is a live host the service may use (any host, or one of its
// `hosts:` list; `host:` is only where it starts) with the fewest replicas of
// the same service, then the fewest containers, ties in file order. A
// container with no such host stays where it is until one comes up.
//
// Reschedule is pure; assign is not modified.
func Reschedule(c *spec.Cluster, assign map[string]model.Assignment, lv Liveness) (map[string]model.Assignment, time.Time) {
	next := make(map[string]model.Assignment, len(assign))
	load := map[string]int{}
	sameService := map[[2]string]int{} // {service, host} -> containers
	for name, a := range assign {
		next[name] = a
		load[a.Host]++
		sameService[[2]string{a.Service, a.Host}]++
	}
	var wake time.Time
	for _, name := range containerOrder(c, assign) {
		a := assign[name]
		if lv.Live[a.Host] {
			continue
		}
		svc, ok := c.ServiceByName(a.Service)
		since, down := lv.DownSince[a.Host]
		if !ok || !svc.Reschedules() || !down {
			continue
		}
		if due := since.Add(svc.RescheduleAfter.Duration); lv.Now.Before(due) {
			if wake.IsZero() || due.Before(wake) {
				wake = due
			}
			continue
		}
		target := pickLive(c, svc, lv.Live, load, sameService)
		if target == "" {
			continue
		}
		load[a.Host]--
		sameService[[2]string{a.Service, a.Host}]--
		load[target]++
		sameService[[2]string{a.Service, target}]++
		if a.Home == "" {
			a.Home = a.Host
		}
		a.Host = target
		if a.Home == target {
			a.Home = ""
		}
		next[name] = a
	}
	return next, wake
}

// containerOrder lists assigned containers in file order of their service,
// then by replica index, so moves are deterministic.
func containerOrder(c *spec.Cluster, assign map[string]model.Assignment) []string {
	rank := map[string]int{}
	for i, s := range c.Services {
		rank[s.Name] = i
	}
	names := make([]string, 0, len(assign))
	for name := range assign {
		names = append(names, name)
	}
	slices.SortFunc(names, func(x, y string) int {
		ax, ay := assign[x], assign[y]
		if rx, ry := rank[ax.Service], rank[ay.Service]; rx != ry {
			return rx - ry
		}
		if ax.Index != ay.Index {
			return ax.Index - ay.Index
		}
		if x < y {
			return -1
		}
		if x > y {
			return 1
		}
		return 0
	})
	return names
}

func pickLive(c *spec.Cluster, svc spec.Service, live map[string]bool, load map[string]int, sameService map[[2]string]int) string {
	best := ""
	for _, h := range c.Hosts {
		if !live[h.Name] || (len(svc.Hosts) > 0 && !slices.Contains(svc.Hosts, h.Name)) {
			continue
		}
		if best == "" {
			best = h.Name
			continue
		}
		hs, bs := sameService[[2]string{svc.Name, h.Name}], sameService[[2]string{svc.Name, best}]
		if hs < bs || (hs == bs && load[h.Name] < load[best]) {
			best = h.Name
		}
	}
	return best
}

// keepMoved keeps a container the leader moved off its home (old.Home set)
// where it runs, as long as the file still places it at home and the service
// may run where it is now. With `reschedule: false` it goes back home. It
// reports whether it assigned the container.
func (p *placement) keepMoved(w wanted, old model.Assignment) bool {
	if old.Home == "" || !p.hostAllowed(w.service, old.Home) {
		return false
	}
	if !w.service.Reschedules() {
		p.assign(w, old.Home, old.IP)
		return true
	}
	if _, known := p.cluster.HostByName(old.Host); !known {
		return false
	}
	if len(w.service.Hosts) > 0 && !slices.Contains(w.service.Hosts, old.Host) {
		return false
	}
	p.assignMoved(w, old.Host, old.Home, old.IP)
	return true
}
