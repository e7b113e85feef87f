package spec

import (
	"fmt"
	"net/netip"

	"gopkg.in/yaml.v3"
)

// VIP modes.
const (
	VIPActiveStandby = "active-standby" // one holder at a time, fenced by the store
	VIPActiveActive  = "active-active"  // one multipath route to every healthy holder
)

// VIP is a floating address of the underlay, outside every subnet, held by
// one host that runs a healthy instance of one of Services (seed 001's
// overlay IP moved by a route at the VPC edge).
type VIP struct {
	Name     string     `json:"name"`
	Address  netip.Addr `json:"address"`  // inside network.cidr, outside every subnet
	Port     int        `json:"port"`     // the TCP port served on the VIP
	Services []string   `json:"services"` // candidates: hosts running a healthy instance of one of them
	// TargetPort is the instances' port VIP:Port is delivered to; default:
	// the services' common port.
	TargetPort int    `json:"target_port,omitempty"`
	Mode       string `json:"mode"` // active-standby (default) | active-active
}

// VIPByName returns the VIP called name.
func (c *Cluster) VIPByName(name string) (VIP, bool) {
	for _, v := range c.VIPs {
		if v.Name == name {
			return v, true
		}
	}
	return VIP{}, false
}

func (d *decoder) vip(n *yaml.Node, path string) VIP {
	var v VIP
	d.at(n, path)
	d.mapping(n, path, fieldReaders{
		"name":        func(x *yaml.Node, p string) { v.Name = d.str(x, p) },
		"address":     func(x *yaml.Node, p string) { v.Address = d.addr(x, p) },
		"port":        func(x *yaml.Node, p string) { v.Port = d.integer(x, p) },
		"services":    func(x *yaml.Node, p string) { v.Services = d.strings(x, p, "[gateway-1, gateway-2]") },
		"target_port": func(x *yaml.Node, p string) { v.TargetPort = d.integer(x, p) },
		"mode":        func(x *yaml.Node, p string) { v.Mode = d.str(x, p) },
	})
	return v
}

func (d *decoder) vips(n *yaml.Node, path string, c *Cluster) {
	for i, item := range d.list(n, path, "- {name: shop, address: 192.168.0.100, port: 80, services: [gateway-1, gateway-2]}") {
		c.VIPs = append(c.VIPs, d.vip(item, index(path, i)))
	}
}

func (c *Cluster) defaultVIPs() {
	for i := range c.VIPs {
		v := &c.VIPs[i]
		if v.Mode == "" {
			v.Mode = VIPActiveStandby
		}
		if v.TargetPort == 0 {
			v.TargetPort = c.sharedPort(v.Services)
		}
	}
}

func (c *Cluster) validateVIPs(ps *Problems) {
	names := map[string]int{}
	addrs := map[netip.Addr]int{}
	for i, v := range c.VIPs {
		field := index("vips", i)
		switch {
		case v.Name == "":
			ps.add(field+".name", nil, "missing; `weft status` and publish name the VIP by it", "add `name: shop`")
		case !dnsLabelPattern.MatchString(v.Name) || len(v.Name) > 40:
			ps.add(field+".name", v.Name, "bad VIP name: 1 to 40 lowercase letters, digits and '-'", "rename it, e.g. `"+exampleName(v.Name, 40)+"`")
		default:
			if first, dup := names[v.Name]; dup {
				ps.add(field+".name", v.Name, fmt.Sprintf("vips[%d] has the same name", first), "give every VIP its own name")
			} else {
				names[v.Name] = i
			}
		}
		c.validateVIPAddress(ps, field+".address", v.Address)
		if v.Address.IsValid() {
			if first, dup := addrs[v.Address]; dup {
				ps.add(field+".address", v.Address, fmt.Sprintf("vips[%d] has the same address", first), "give every VIP its own address")
			} else {
				addrs[v.Address] = i
			}
		}
		if !validPort(v.Port) {
			ps.add(field+".port", v.Port, "missing or not a TCP port (1..65535)", "write the port clients connect to on the VIP, e.g. `port: 80`")
		}
		if len(v.Services) == 0 {
			ps.add(field+".services", nil, "missing; the VIP is held by a host that runs a healthy instance of one of them", "list them, e.g. `services: [gateway-1, gateway-2]`")
		}
		allKnown := true
		for j, name := range v.Services {
			if _, ok := c.ServiceByName(name); !ok {
				allKnown = false
				ps.add(index(field+".services", j), name, "unknown service", suggestion(name, c.serviceNames(), "services"))
			}
		}
		switch {
		case v.TargetPort == 0 && allKnown && len(v.Services) > 0:
			ps.add(field+".target_port", nil, "the services have no common port to deliver the VIP to", "give the services the same `port:`, or set `target_port:` under the VIP")
		case v.TargetPort != 0 && !validPort(v.TargetPort):
			ps.add(field+".target_port", v.TargetPort, "not a TCP port (1..65535)", "write the port the services listen on, or leave it out")
		}
		if v.Mode != VIPActiveStandby && v.Mode != VIPActiveActive {
			ps.add(field+".mode", v.Mode, "unknown mode", "use `active-standby` (one holder; the default) or `active-active` (every healthy holder, one multipath route)")
		}
	}
}

// validateVIPAddress checks that a is in the underlay but outside every
// subnet: the router's route to the holder is its only way in, as a route
// table entry is in a VPC.
func (c *Cluster) validateVIPAddress(ps *Problems, field string, a netip.Addr) {
	cidr := c.Network.CIDR
	switch {
	case !a.IsValid():
		ps.add(field, nil, "missing", "add an address inside network.cidr but outside every subnet, e.g. `address: 192.168.0.100`")
		return
	case !a.Is4():
		ps.add(field, a, "only IPv4 VIPs are supported", "use an IPv4 address inside network.cidr, e.g. 192.168.0.100")
		return
	case isIPv4Prefix(cidr) && !cidr.Contains(a):
		ps.add(field, a, "outside network.cidr "+cidr.String()+"; the VPC router would not route it", "pick an address inside "+cidr.String()+" and outside every subnet")
		return
	}
	for _, s := range c.Network.Subnets {
		if s.CIDR.IsValid() && s.CIDR.Contains(a) {
			ps.add(field, a, fmt.Sprintf("inside subnet %s (%s); a VIP lives outside every subnet so that only its route leads to it", s.Name, s.CIDR),
				"pick an address of network.cidr that no subnet covers, e.g. 192.168.0.100 when the subnets are 192.168.1.0/24, ...")
			return
		}
	}
	for _, h := range c.Hosts {
		if h.Address == a {
			ps.add(field, a, "is host "+h.Name+"'s address", "pick an address no host has")
		}
	}
}

// validatePublishVIP checks a publish entry that forwards through a VIP.
func (c *Cluster) validatePublishVIP(ps *Problems, field string, p Publish) {
	if len(p.Services) > 0 {
		ps.add(field+".services", p.Services, "both vip and services are given", "publish through the VIP (`vip:`) or straight to services, not both")
	}
	v, ok := c.VIPByName(p.VIP)
	if ok && p.Port != v.Port {
		ps.add(field+".port", p.Port, fmt.Sprintf("VIP %s serves port %d", v.Name, v.Port), "leave port out when publishing through a VIP")
	}
	if !ok {
		var names []string
		for _, v := range c.VIPs {
			names = append(names, v.Name)
		}
		ps.add(field+".vip", p.VIP, "unknown VIP", suggestion(p.VIP, names, "vips"))
	}
}
