// Package plan decides where every container runs and on which overlay
// address (placement and IPAM), and what changes between two plans. It is
// pure: the leader feeds it the cluster and the assignments in the store.
package plan

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// wanted is one container the file asks for.
type wanted struct {
	service spec.Service
	index   int
	name    string
	surge   bool // an extra instance of a start-first update
}

// placement is the state of one Place call.
type placement struct {
	cluster *spec.Cluster
	next    map[string]model.Assignment
	owner   map[netip.Addr]string // address -> container holding or reserving it
	load    map[string]int        // host -> containers placed on it
	cursor  netip.Addr            // every overlay address below it is taken or reserved
}

// Place computes every container's host and address. prev are the
// assignments already in the store: a container that still fits keeps its
// host and address (addresses never move on re-apply). Pinned addresses are
// reserved first; the rest are allocated lowest-free from the overlay CIDR
// skipping reserved ones and any address in use. A service with `host` puts
// all replicas there; with `hosts` replicas spread round-robin over those
// hosts in order (keeping prev where still listed); with neither, new
// containers go to the host with the fewest containers (ties: file order).
// Replica indexes are 1..replicas; containers of removed services or indexes
// above replicas are dropped. A container whose pinned ip changed, or whose
// host is no longer allowed, gets a new assignment (it "moves"); a container
// that only changes host keeps its address. Errors (e.g. CIDR exhausted)
// name the service.
//
// A container the leader moved off a down host (Reschedule; prev has Home
// set) stays where it was moved while the file still places it at Home: a
// `host:` is where a container starts, not a chain. Only when the service
// says `reschedule: false` does it go back to Home, keeping its address.
func Place(c *spec.Cluster, prev map[string]model.Assignment) (map[string]model.Assignment, error) {
	return PlaceSurge(c, prev, nil)
}

// PlaceSurge is Place with surge[service] extra containers of that service
// (indexes replicas+1..replicas+surge, marked Surge), which a start-first
// update runs beside the old instances (see Roll). Containers of prev that
// are no longer wanted keep their address reserved for this pass: they are
// drained before they stop, and their address must not serve two
// containers meanwhile. A kept container keeps the definition it runs
// (Def); a new one has none yet (Roll gives it one).
func PlaceSurge(c *spec.Cluster, prev map[string]model.Assignment, surge map[string]int) (map[string]model.Assignment, error) {
	if len(c.Hosts) == 0 {
		return nil, fmt.Errorf("placing containers of cluster %s: the cluster has no hosts", c.Name)
	}
	if !c.Overlay.CIDR.IsValid() || !c.Overlay.CIDR.Addr().Is4() {
		return nil, fmt.Errorf("placing containers of cluster %s: overlay cidr %q is not an IPv4 network", c.Name, c.Overlay.CIDR)
	}
	p := &placement{
		cluster: c,
		next:    map[string]model.Assignment{},
		owner:   map[netip.Addr]string{},
		load:    map[string]int{},
		cursor:  c.Overlay.CIDR.Addr(),
	}
	want := wantedContainers(c, surge)
	wantedName := map[string]bool{}
	for _, w := range want {
		wantedName[w.name] = true
		if w.service.IP.IsValid() {
			p.owner[w.service.IP] = w.name
		}
	}
	for _, name := range slices.Sorted(maps.Keys(prev)) {
		if ip := prev[name].IP; !wantedName[name] && ip.IsValid() {
			if _, taken := p.owner[ip]; !taken {
				p.owner[ip] = name
			}
		}
	}
	keptIP := p.keep(want, prev)
	for _, w := range want {
		if _, placed := p.next[w.name]; placed {
			continue
		}
		host, err := p.pickHost(w)
		if err != nil {
			return nil, err
		}
		ip, ok := keptIP[w.name]
		if !ok {
			if ip, err = p.address(w); err != nil {
				return nil, err
			}
		}
		p.assign(w, host, ip)
	}
	for name, n := range p.next {
		if old, ok := prev[name]; ok && old.Service == n.Service {
			n.Def = old.Def
			p.next[name] = n
		}
	}
	return p.next, nil
}

func wantedContainers(c *spec.Cluster, surge map[string]int) []wanted {
	var out []wanted
	for _, s := range c.Services {
		for i := 1; i <= s.Replicas; i++ {
			out = append(out, wanted{service: s, index: i, name: naming.ContainerName(s.Name, i)})
		}
		if s.Replicas == 0 {
			continue
		}
		for i := s.Replicas + 1; i <= s.Replicas+surge[s.Name]; i++ {
			out = append(out, wanted{service: s, index: i, name: naming.ContainerName(s.Name, i), surge: true})
		}
	}
	return out
}

// keep carries over every previous assignment that still fits, and claims the
// address of those that must change host but may keep their address.
func (p *placement) keep(want []wanted, prev map[string]model.Assignment) map[string]netip.Addr {
	keptIP := map[string]netip.Addr{}
	for _, w := range want {
		old, ok := prev[w.name]
		if !ok || old.Service != w.service.Name || old.Index != w.index {
			continue
		}
		ipFits := p.addressFits(w, old.IP)
		if ipFits && p.keepMoved(w, old) {
			continue
		}
		if ipFits && p.hostAllowed(w.service, old.Host) {
			p.assign(w, old.Host, old.IP)
			continue
		}
		if ipFits {
			p.owner[old.IP] = w.name
			keptIP[w.name] = old.IP
		}
	}
	return keptIP
}

// addressFits reports whether a previous address may stay with the container.
func (p *placement) addressFits(w wanted, ip netip.Addr) bool {
	if pinned := w.service.IP; pinned.IsValid() {
		return ip == pinned
	}
	holder, taken := p.owner[ip]
	return ip.IsValid() && p.cluster.Overlay.CIDR.Contains(ip) && !p.cluster.IsReserved(ip) && (!taken || holder == w.name)
}

func (p *placement) hostAllowed(s spec.Service, host string) bool {
	if _, known := p.cluster.HostByName(host); !known {
		return false
	}
	switch {
	case s.Host != "":
		return host == s.Host
	case len(s.Hosts) > 0:
		return slices.Contains(s.Hosts, host)
	default:
		return true
	}
}

func (p *placement) pickHost(w wanted) (string, error) {
	s := w.service
	switch {
	case s.Host != "":
		if _, ok := p.cluster.HostByName(s.Host); !ok {
			return "", fmt.Errorf("placing %s of service %s: unknown host %s", w.name, s.Name, s.Host)
		}
		return s.Host, nil
	case len(s.Hosts) > 0:
		host := s.Hosts[(w.index-1)%len(s.Hosts)]
		if _, ok := p.cluster.HostByName(host); !ok {
			return "", fmt.Errorf("placing %s of service %s: unknown host %s", w.name, s.Name, host)
		}
		return host, nil
	}
	best := p.cluster.Hosts[0].Name
	for _, h := range p.cluster.Hosts[1:] {
		if p.load[h.Name] < p.load[best] {
			best = h.Name
		}
	}
	return best, nil
}

// address is the pinned address, or the lowest free one of the overlay.
func (p *placement) address(w wanted) (netip.Addr, error) {
	if w.service.IP.IsValid() {
		return w.service.IP, nil
	}
	cidr := p.cluster.Overlay.CIDR
	for ; cidr.Contains(p.cursor); p.cursor = p.cursor.Next() {
		if _, taken := p.owner[p.cursor]; taken || p.cluster.IsReserved(p.cursor) {
			continue
		}
		ip := p.cursor
		p.owner[ip] = w.name
		p.cursor = p.cursor.Next()
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("allocating an address for %s of service %s: overlay cidr %s has no free address left; use a larger overlay.cidr or fewer replicas",
		w.name, w.service.Name, cidr)
}

func (p *placement) assign(w wanted, host string, ip netip.Addr) {
	p.assignMoved(w, host, "", ip)
}

// assignMoved assigns a container that runs on host although placement put
// it on home (it was rescheduled); home is empty when it runs where placed.
func (p *placement) assignMoved(w wanted, host, home string, ip netip.Addr) {
	p.owner[ip] = w.name
	p.load[host]++
	p.next[w.name] = model.Assignment{
		Container: w.name,
		Service:   w.service.Name,
		Index:     w.index,
		Host:      host,
		IP:        ip,
		MAC:       naming.MACFromIP(ip).String(),
		Home:      home,
		Surge:     w.surge,
	}
}

// Diff lists the containers that appear, go, or change host or address
// between two sets of assignments, each sorted by name.
func Diff(prev, next map[string]model.Assignment) model.Changes {
	var ch model.Changes
	for name, n := range next {
		old, ok := prev[name]
		switch {
		case !ok:
			ch.Added = append(ch.Added, name)
		case old.Host != n.Host || old.IP != n.IP:
			ch.Moved = append(ch.Moved, name)
		}
	}
	for name := range prev {
		if _, ok := next[name]; !ok {
			ch.Removed = append(ch.Removed, name)
		}
	}
	sort.Strings(ch.Added)
	sort.Strings(ch.Removed)
	sort.Strings(ch.Moved)
	return ch
}

// StartOrder groups services into dependency layers: the first layer depends
// on nothing, each later one only on earlier layers; file order within a
// layer. Services caught in a cycle (refused by validation) come last.
func StartOrder(c *spec.Cluster) [][]string {
	layerOf := map[string]int{}
	remaining := slices.Clone(c.Services)
	var layers [][]string
	for len(remaining) > 0 {
		var layer []string
		var rest []spec.Service
		for _, s := range remaining {
			if dependenciesPlaced(c, s, layerOf) {
				layer = append(layer, s.Name)
			} else {
				rest = append(rest, s)
			}
		}
		if len(layer) == 0 {
			for _, s := range rest {
				layer = append(layer, s.Name)
			}
			rest = nil
		}
		for _, name := range layer {
			layerOf[name] = len(layers)
		}
		layers = append(layers, layer)
		remaining = rest
	}
	return layers
}

// dependenciesPlaced reports whether every known dependency of s is already
// in an earlier layer.
func dependenciesPlaced(c *spec.Cluster, s spec.Service, layerOf map[string]int) bool {
	for _, dep := range s.DependsOn {
		if _, known := c.ServiceByName(dep); !known || dep == s.Name {
			continue
		}
		if _, placed := layerOf[dep]; !placed {
			return false
		}
	}
	return true
}
