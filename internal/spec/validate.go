package spec

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/weft-dev/weft/internal/naming"
)

var (
	clusterNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,18}[a-z0-9]$`)
	hostNamePattern    = clusterNamePattern
	subnetNamePattern  = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$`)
	serviceNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*[a-z0-9]$`)
	dnsLabelPattern    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	envKeyPattern      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	volumeNamePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

const (
	maxServiceNameLen = 40
	maxIfaceNameLen   = 15
	minMTU            = 576
	maxMTU            = 9000
	maxOverlayBits    = 22 // the reserved block must stay a small part of the overlay
	minSubnetHosts    = 28 // a /28 still holds the router (.1) and hosts from .10
)

// privateRanges are the RFC 1918 ranges; the underlay must sit inside one so
// the lab never shadows a public network.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

// Validate checks a defaulted cluster and returns every problem found.
func (c *Cluster) Validate() Problems {
	var ps Problems
	c.validateTop(&ps)
	c.validateNetwork(&ps)
	c.validateOverlay(&ps)
	c.validateHosts(&ps)
	c.validateServices(&ps)
	c.validateDependencies(&ps)
	c.validateRoutes(&ps)
	c.validateGateway(&ps)
	c.validatePublish(&ps)
	c.validateVIPs(&ps)
	c.validateReschedule(&ps)
	return ps
}

func (c *Cluster) validateTop(ps *Problems) {
	if c.Version != DefaultVersion {
		ps.add("version", c.Version, "unsupported version; this weft reads version 1", "write `version: 1`")
	}
	switch c.Provider {
	case DefaultProvider, ProviderSSH:
	default:
		ps.add("provider", c.Provider, "unknown provider; weft knows `lab` (namespaces of this machine) and `ssh` (your own servers)",
			"write `provider: lab` (or leave it out), or `provider: ssh` with an `ssh:` section")
	}
	c.validateSSH(ps)
	switch {
	case c.Name == "":
		ps.add("name", nil, "missing; the cluster name prefixes every namespace and file weft creates",
			"add `name: hello` (2 to 20 lowercase letters, digits or '-')")
	case !clusterNamePattern.MatchString(c.Name):
		ps.add("name", c.Name, "cannot be used in namespace and interface names: it must be 2 to 20 characters of lowercase letters, digits and '-', start with a letter and not end with '-'",
			"rename it, e.g. `name: "+exampleName(c.Name, 20)+"`")
	}
	if problem := dnsNameProblem(c.Domain); problem != "" {
		ps.add("domain", c.Domain, problem, "use lowercase labels of letters, digits and '-' separated by dots, e.g. `domain: weft`")
	}
}

func (c *Cluster) validateNetwork(ps *Problems) {
	n := c.Network
	switch {
	case !n.CIDR.IsValid():
		ps.add("network.cidr", nil, "missing; the underlay network must be named", "add `cidr: 192.168.0.0/16` under network")
	case !n.CIDR.Addr().Is4():
		ps.add("network.cidr", n.CIDR, "only IPv4 networks are supported", "use an IPv4 private range such as 192.168.0.0/16")
	case !isPrivate(n.CIDR):
		ps.add("network.cidr", n.CIDR, "not a private range (RFC 1918); the lab must not shadow public addresses",
			"use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, e.g. 192.168.0.0/16")
	}
	if n.MTU < minMTU || n.MTU > maxMTU {
		ps.add("network.mtu", n.MTU, fmt.Sprintf("outside %d..%d", minMTU, maxMTU), "use 1500 (or leave it out), or up to 9000 for jumbo frames")
	}
	if len(n.Subnets) == 0 {
		ps.add("network.subnets", nil, "no subnets; every host lives in one", "add e.g. `subnets: {a: 192.168.1.0/24}` under network")
	}
	seen := map[string]bool{}
	for i, s := range n.Subnets {
		field := "network.subnets." + s.Name
		if seen[s.Name] {
			ps.add(field, nil, "subnet defined twice", "keep one of them")
			continue
		}
		seen[s.Name] = true
		if !subnetNamePattern.MatchString(s.Name) {
			ps.add(field, s.Name, "bad subnet name: it must be 1 to 20 lowercase letters, digits or '-', starting with a letter",
				"rename it, e.g. `"+exampleName(s.Name, 20)+"`")
		}
		switch {
		case !s.CIDR.IsValid():
			ps.add(field, nil, "missing CIDR", "write it like `"+s.Name+": 192.168.1.0/24`")
			continue
		case !s.CIDR.Addr().Is4():
			ps.add(field, s.CIDR, "only IPv4 subnets are supported", "use an IPv4 CIDR inside network.cidr")
			continue
		case s.CIDR.Masked() != s.CIDR:
			ps.add(field, s.CIDR, "has bits set after the prefix length", "write the network address: "+s.CIDR.Masked().String())
		}
		if n.CIDR.IsValid() && !containsPrefix(n.CIDR, s.CIDR) {
			ps.add(field, s.CIDR, "outside network.cidr "+n.CIDR.String(), "pick a subnet inside "+n.CIDR.String()+" or widen network.cidr")
		}
		if s.CIDR.Bits() > minSubnetHosts {
			ps.add(field, s.CIDR, "too small: the router takes .1 and hosts start at .10", "use a /28 or larger subnet")
		}
		for _, other := range n.Subnets[:i] {
			if other.CIDR.IsValid() && other.CIDR.Overlaps(s.CIDR) {
				ps.add(field, s.CIDR, fmt.Sprintf("overlaps subnet %s (%s)", other.Name, other.CIDR),
					fmt.Sprintf("give subnets %s and %s disjoint ranges", other.Name, s.Name))
			}
		}
	}
}

func (c *Cluster) validateOverlay(ps *Problems) {
	o := c.Overlay
	switch {
	case o.VNI == 0:
		ps.add("overlay.vni", nil, "missing; every host must join the same VXLAN network identifier", fmt.Sprintf("add `vni: 444` (any number from %d to %d) under overlay", MinVNI, MaxVNI))
	case !VNIInRange(o.VNI):
		ps.add("overlay.vni", o.VNI, fmt.Sprintf("outside %d..%d", MinVNI, MaxVNI), fmt.Sprintf("pick a VNI from %d to %d", MinVNI, MaxVNI))
	}
	if o.Port < 1 || o.Port > 65535 {
		ps.add("overlay.port", o.Port, "not a UDP port (1..65535)", "use 4789 (the VXLAN port) or leave it out")
	}
	switch {
	case !o.CIDR.IsValid():
		ps.add("overlay.cidr", nil, "missing", "leave it out (10.10.0.0/16) or write a range such as 10.10.0.0/16")
	case !o.CIDR.Addr().Is4():
		ps.add("overlay.cidr", o.CIDR, "only IPv4 overlays are supported", "use an IPv4 range such as 10.10.0.0/16")
	case o.CIDR.Masked() != o.CIDR:
		ps.add("overlay.cidr", o.CIDR, "has bits set after the prefix length", "write the network address: "+o.CIDR.Masked().String())
	case o.CIDR.Bits() > maxOverlayBits:
		ps.add("overlay.cidr", o.CIDR, "too small: weft keeps its last 256 addresses for the hosts", "use a /22 or larger overlay, e.g. 10.10.0.0/16")
	case c.Network.CIDR.IsValid() && o.CIDR.Overlaps(c.Network.CIDR):
		ps.add("overlay.cidr", o.CIDR, "overlaps network.cidr "+c.Network.CIDR.String(), "pick disjoint ranges, e.g. overlay 10.10.0.0/16 with network 192.168.0.0/16")
	}
	switch {
	case o.MTU < minMTU || o.MTU > maxMTU:
		ps.add("overlay.mtu", o.MTU, fmt.Sprintf("outside %d..%d", minMTU, maxMTU), "leave it out: it defaults to network.mtu - 50")
	case o.MTU > c.Network.MTU-VXLANOverhead:
		ps.add("overlay.mtu", o.MTU, fmt.Sprintf("larger than network.mtu - 50 = %d; VXLAN adds 50 bytes of headers and big packets would be dropped", c.Network.MTU-VXLANOverhead),
			fmt.Sprintf("use %d or less, or leave it out", c.Network.MTU-VXLANOverhead))
	}
	if problem := ifaceNameProblem(o.Bridge); problem != "" {
		ps.add("overlay.bridge", o.Bridge, problem, "use a short name like `br-vxlan` (at most 15 bytes, no '/', ':' or spaces)")
	} else if o.Bridge == naming.VXLANDevice(o.VNI) {
		ps.add("overlay.bridge", o.Bridge, "same name as the vxlan device", "use another name, e.g. `br-vxlan`")
	}
}

func (c *Cluster) validateHosts(ps *Problems) {
	if len(c.Hosts) == 0 {
		ps.add("hosts", nil, "no hosts; containers need somewhere to run", "add e.g. `hosts: [{name: host1, subnet: a}]`")
		return
	}
	if len(c.Hosts) > MaxHosts {
		ps.add("hosts", len(c.Hosts), fmt.Sprintf("too many hosts: at most %d", MaxHosts), "split the hosts into several clusters")
	}
	names := map[string]int{}
	addrs := map[netip.Addr]int{}
	anyManager := false
	for i, h := range c.Hosts {
		field := index("hosts", i)
		switch {
		case h.Name == "":
			ps.add(field+".name", nil, "missing", fmt.Sprintf("add `name: host%d`", i+1))
		case !hostNamePattern.MatchString(h.Name):
			ps.add(field+".name", h.Name, "cannot be used in namespace names: it must be 2 to 20 characters of lowercase letters, digits and '-', start with a letter and not end with '-'",
				"rename it, e.g. `"+exampleName(h.Name, 20)+"`")
		default:
			if first, dup := names[h.Name]; dup {
				ps.add(field+".name", h.Name, fmt.Sprintf("hosts[%d] has the same name", first), "give every host its own name")
			} else {
				names[h.Name] = i
			}
		}
		subnet, known := c.SubnetByName(h.Subnet)
		switch {
		case h.Subnet == "":
			ps.add(field+".subnet", nil, "missing; every host lives in one subnet", "add `subnet:` with one of: "+strings.Join(c.subnetNames(), ", "))
		case !known:
			ps.add(field+".subnet", h.Subnet, "unknown subnet", suggestion(h.Subnet, c.subnetNames(), "subnets"))
		}
		c.validateHostAddress(ps, field, h, subnet, known)
		if h.Address.IsValid() {
			if first, dup := addrs[h.Address]; dup {
				ps.add(field+".address", h.Address, fmt.Sprintf("hosts[%d] (%s) has the same address", first, c.Hosts[first].Name), "give every host its own address, or leave address out")
			} else {
				addrs[h.Address] = i
			}
		}
		for j, role := range h.Roles {
			if role != RoleManager && role != RoleWorker {
				ps.add(index(field+".roles", j), role, "unknown role", "use `manager` (carries an etcd member) or `worker`")
			}
		}
		if h.IsManager() && slices.Contains(h.Roles, RoleWorker) {
			ps.add(field+".roles", h.Roles, "a host cannot be both manager and worker", "keep one of the two roles")
		}
		anyManager = anyManager || h.IsManager()
	}
	if !anyManager {
		ps.add("hosts", nil, "no host is a manager; the cluster store needs at least one", "give one or three hosts `roles: [manager]`")
	}
}

func (c *Cluster) validateHostAddress(ps *Problems, field string, h Host, subnet Subnet, known bool) {
	a := h.Address
	switch {
	case !known || !isIPv4Prefix(subnet.CIDR):
		// The subnet problem is already reported.
	case !a.IsValid() && c.Provider == ProviderSSH:
		ps.add(field+".address", nil, "missing; provider ssh connects to each server at its own underlay address",
			"add `address:` with the server's address inside "+subnet.CIDR.String())
	case !a.IsValid():
		ps.add(field+".address", nil, fmt.Sprintf("subnet %s (%s) has no free address left from .%d up", subnet.Name, subnet.CIDR, firstHostOctet),
			"set an address for this host, or use a larger subnet")
	case !a.Is4():
		ps.add(field+".address", a, "only IPv4 addresses are supported", "use an address inside "+subnet.CIDR.String())
	case !subnet.CIDR.Contains(a):
		ps.add(field+".address", a, fmt.Sprintf("outside its subnet %s (%s)", subnet.Name, subnet.CIDR), "pick an address inside "+subnet.CIDR.String()+" or leave address out")
	case a == subnet.CIDR.Addr():
		ps.add(field+".address", a, "is the subnet's network address", "pick another address, e.g. "+addOffset(subnet.CIDR.Addr(), firstHostOctet).String()+", or leave address out")
	case a == lastAddr(subnet.CIDR):
		ps.add(field+".address", a, "is the subnet's broadcast address", "pick another address, or leave address out")
	case a == c.RouterAddr(subnet.Name):
		ps.add(field+".address", a, "is the router's address (.1) in the subnet", "pick another address, or leave address out")
	}
}

func (c *Cluster) validateServices(ps *Problems) {
	names := map[string]bool{}
	pinned := map[netip.Addr]string{}
	for _, s := range c.Services {
		field := "services." + s.Name
		switch {
		case names[s.Name]:
			ps.add(field, nil, "service defined twice", "keep one of them")
			continue
		case len(s.Name) > maxServiceNameLen || !serviceNamePattern.MatchString(s.Name):
			ps.add(field, s.Name, fmt.Sprintf("bad service name: it becomes a DNS name and must be 2 to %d characters of lowercase letters, digits and '-', start with a letter and not end with '-'", maxServiceNameLen),
				"rename it, e.g. `"+exampleName(s.Name, maxServiceNameLen)+"`")
		}
		names[s.Name] = true
		c.validateService(ps, field, s)
		if s.IP.IsValid() {
			if other, dup := pinned[s.IP]; dup {
				ps.add(field+".ip", s.IP, "service "+other+" is pinned to the same address", "give each service its own ip, or leave ip out to allocate one")
			} else {
				pinned[s.IP] = s.Name
			}
		}
	}
	// A service named like a container of another ("web-2") would share its
	// DNS name. Checked from the names, not by listing every replica: a
	// huge replica count must not cost time.
	replicas := map[string]int{}
	for _, s := range c.Services {
		replicas[s.Name] = s.Replicas
	}
	for _, s := range c.Services {
		cut := strings.LastIndexByte(s.Name, '-')
		if cut <= 0 {
			continue
		}
		i, err := strconv.Atoi(s.Name[cut+1:])
		owner := s.Name[:cut]
		if err != nil || i < 1 || strconv.Itoa(i) != s.Name[cut+1:] {
			continue
		}
		if n, ok := replicas[owner]; ok && i <= n {
			ps.add("services."+s.Name, nil, fmt.Sprintf("same name as container %d of service %s; DNS names would collide", i, owner),
				"rename service "+s.Name)
		}
	}
	c.validateCapacity(ps)
}

// validateCapacity checks that the containers asked for fit in the overlay:
// each needs an address outside the reserved block.
func (c *Cluster) validateCapacity(ps *Problems) {
	if !isIPv4Prefix(c.Overlay.CIDR) {
		return
	}
	first := toUint32(c.Overlay.CIDR.Masked().Addr()) + 1
	last := toUint32(reservedStart(c.Overlay.CIDR))
	room := int64(0)
	if last > first {
		room = int64(last - first)
	}
	var total int64
	for _, s := range c.Services {
		if s.Replicas <= 0 {
			continue
		}
		total += int64(s.Replicas)
		if total > room {
			ps.add("services."+s.Name+".replicas", s.Replicas,
				fmt.Sprintf("the overlay %s has room for %d containers in all, and the services up to this one ask for %d", c.Overlay.CIDR, room, total),
				"lower replicas, or use a larger overlay.cidr")
			return
		}
	}
}

func (c *Cluster) validateService(ps *Problems, field string, s Service) {
	c.validateImage(ps, field, s)
	switch {
	case len(s.Command) == 0 && s.Image == "":
		ps.add(field+".command", nil, "missing; weft needs a program to run", "add e.g. `command: [./bin/"+s.Name+", -listen, \":8080\"]`, or an image: to run")
	case len(s.Command) > 0 && s.Command[0] == "":
		ps.add(field+".command", s.Command, "the program (first element) is empty", "start the list with the program to run")
	}
	if s.Restart != RestartAlways && s.Restart != RestartOnFailure && s.Restart != RestartNever {
		ps.add(field+".restart", s.Restart, "unknown restart policy", "use always, on-failure or never")
	}
	if s.Replicas < 0 {
		ps.add(field+".replicas", s.Replicas, "negative", "use 0 to scale the service to zero, or a positive count")
	}
	if s.Port != 0 && !validPort(s.Port) {
		ps.add(field+".port", s.Port, "not a TCP port (1..65535)", "use the port the service listens on, e.g. 8080")
	}
	if s.Workdir != "" && !filepath.IsAbs(s.Workdir) {
		ps.add(field+".workdir", s.Workdir, "not an absolute path", "write the full path, e.g. /srv/"+s.Name)
	}
	c.validatePinnedIP(ps, field, s)
	validateResources(ps, field+".resources", s.Resources)
	switch {
	case s.Host != "" && len(s.Hosts) > 0:
		ps.add(field+".host", s.Host, "both host and hosts are given", "use host to put every replica on one host, or hosts to spread them, not both")
	case s.Host != "":
		if _, ok := c.HostByName(s.Host); !ok {
			ps.add(field+".host", s.Host, "unknown host", suggestion(s.Host, c.hostNames(), "hosts"))
		}
	}
	seenHosts := map[string]bool{}
	for i, h := range s.Hosts {
		if _, ok := c.HostByName(h); !ok {
			ps.add(index(field+".hosts", i), h, "unknown host", suggestion(h, c.hostNames(), "hosts"))
		} else if seenHosts[h] {
			ps.add(index(field+".hosts", i), h, "listed twice", "list each host once")
		}
		seenHosts[h] = true
	}
	for _, key := range sortedKeys(s.Env) {
		if !envKeyPattern.MatchString(key) {
			ps.add(field+".env."+key, key, "not a valid environment variable name", "use letters, digits and '_', not starting with a digit, e.g. LOG_LEVEL")
		}
	}
	if s.Health != nil {
		validateHealth(ps, field+".health", *s.Health, s.Port)
	}
	validateVolumes(ps, field+".volumes", s.Volumes)
	validateArtifacts(ps, field+".artifacts", s.Artifacts)
	validateUpdate(ps, field, s)
}

// validateImage checks the image field's syntax, that entrypoint comes with
// an image, and that an image pulled from the cluster's own registry
// service waits for it.
func (c *Cluster) validateImage(ps *Problems, field string, s Service) {
	if s.Image == "" {
		if len(s.Entrypoint) > 0 {
			ps.add(field+".entrypoint", s.Entrypoint, "entrypoint replaces an image's entrypoint, and the service has no image",
				"put the program and its arguments in command, or add image:")
		}
		return
	}
	src, err := ParseImage(s.Image)
	if err != nil {
		ps.add(field+".image", s.Image, err.Error(), "write e.g. image: registry:5000/shop/web:v1, docker-archive:./web.tar or oci:./layout")
		return
	}
	if len(s.Entrypoint) > 0 && s.Entrypoint[0] == "" {
		ps.add(field+".entrypoint", s.Entrypoint, "the program (first element) is empty", "start the list with the program to run")
	}
	host := src.RegistryHost()
	if host == "" || host == s.Name {
		return
	}
	if _, ok := c.ServiceByName(host); ok && !slices.Contains(s.DependsOn, host) {
		ps.add(field+".depends_on", s.DependsOn, fmt.Sprintf("the image is pulled from the cluster's registry service %s, which the service does not wait for", host),
			"add "+host+" to depends_on")
	}
}

func (c *Cluster) validatePinnedIP(ps *Problems, field string, s Service) {
	ip, cidr := s.IP, c.Overlay.CIDR
	if !ip.IsValid() {
		return
	}
	if s.Replicas > 1 {
		ps.add(field+".ip", ip, fmt.Sprintf("a pinned address fits one container but replicas is %d", s.Replicas),
			"remove ip to allocate one address per replica, or set replicas: 1")
	}
	switch {
	case !ip.Is4():
		ps.add(field+".ip", ip, "only IPv4 addresses are supported", "pick an address inside "+cidr.String())
	case !c.overlayUsable():
		// Where the address may go is unknown until overlay.cidr is fixed.
	case !cidr.Contains(ip):
		ps.add(field+".ip", ip, "outside the overlay cidr "+cidr.String(), "pick an address inside "+cidr.String()+" or leave ip out to allocate one")
	case c.IsReserved(ip):
		first, last := c.ReservedRange()
		msg := fmt.Sprintf("reserved: the overlay's network address and its last 256 addresses (%s-%s) belong to weft", first, last)
		for _, h := range c.Hosts {
			if c.HostOverlayAddr(h.Name) == ip {
				msg = "is host " + h.Name + "'s bridge address on the overlay"
			}
		}
		ps.add(field+".ip", ip, msg, fmt.Sprintf("pick an address below %s, or leave ip out to allocate one", first))
	}
}

// overlayUsable reports whether the overlay CIDR is good enough to check
// addresses against (its own problems are reported by validateOverlay).
func (c *Cluster) overlayUsable() bool {
	o := c.Overlay.CIDR
	return isIPv4Prefix(o) && o.Masked() == o && o.Bits() <= maxOverlayBits
}

// validateHealth checks a service's health check; servicePort problems are
// reported on the service, not again on the port the check inherits.
func validateHealth(ps *Problems, field string, h Health, servicePort int) {
	kinds := 0
	for _, set := range []bool{h.HTTP != "", h.TCP != 0, len(h.Exec) > 0} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		ps.add(field, nil, "no check given", "add one of `http: /health`, `tcp: PORT` or `exec: [cmd, args]`, or remove health")
	case kinds > 1:
		ps.add(field, nil, "more than one of http, tcp and exec", "keep exactly one kind of check")
	}
	if h.HTTP != "" {
		if !strings.HasPrefix(h.HTTP, "/") {
			ps.add(field+".http", h.HTTP, "the path must start with '/'", "write it like /health")
		}
		if h.Port == 0 {
			ps.add(field+".port", nil, "an http check needs a port, and the service has none", "set the service's port, or health.port")
		}
	}
	if h.TCP != 0 && !validPort(h.TCP) {
		ps.add(field+".tcp", h.TCP, "not a TCP port (1..65535)", "write the port to connect to, e.g. tcp: 5432")
	}
	if h.Port != 0 && h.Port != servicePort && !validPort(h.Port) {
		ps.add(field+".port", h.Port, "not a TCP port (1..65535)", "write the port the check connects to, e.g. 8080")
	}
	if h.Interval.Duration <= 0 {
		ps.add(field+".interval", h.Interval.Duration, "must be positive", "write it like 500ms or 2s")
	}
	if h.Timeout.Duration <= 0 {
		ps.add(field+".timeout", h.Timeout.Duration, "must be positive", "write it like 500ms or 2s")
	}
	if h.StartPeriod.Duration < 0 {
		ps.add(field+".start_period", h.StartPeriod.Duration, "negative", "write it like 5s, or leave it out")
	}
	if h.Retries < 1 {
		ps.add(field+".retries", h.Retries, "must be at least 1", fmt.Sprintf("leave it out (%d) or write a positive count", DefaultHealthRetries))
	}
}

func validateVolumes(ps *Problems, field string, volumes []Volume) {
	names := map[string]bool{}
	paths := map[string]bool{}
	for i, v := range volumes {
		f := index(field, i)
		switch {
		case v.Name == "":
			ps.add(f+".name", nil, "missing", "name the volume, e.g. `name: data`")
		case !volumeNamePattern.MatchString(v.Name):
			ps.add(f+".name", v.Name, "not usable as a directory name", "use letters, digits, '_', '.' and '-', starting with a letter or digit")
		case names[v.Name]:
			ps.add(f+".name", v.Name, "another volume of this service has the same name", "give each volume its own name")
		}
		names[v.Name] = true
		switch {
		case v.Path == "":
			ps.add(f+".path", nil, "missing", "write where the volume is mounted inside the container, e.g. `path: /data`")
		case !filepath.IsAbs(v.Path):
			ps.add(f+".path", v.Path, "not an absolute path", "write the full path inside the container, e.g. /"+strings.TrimLeft(v.Path, "./"))
		case paths[filepath.Clean(v.Path)]:
			ps.add(f+".path", v.Path, "another volume of this service is mounted there", "mount each volume at its own path")
		}
		paths[filepath.Clean(v.Path)] = true
	}
}

func (c *Cluster) validateDependencies(ps *Problems) {
	names := c.serviceNames()
	for _, s := range c.Services {
		seen := map[string]bool{}
		for i, dep := range s.DependsOn {
			field := index("services."+s.Name+".depends_on", i)
			_, known := c.ServiceByName(dep)
			switch {
			case dep == s.Name:
				ps.add(field, dep, "a service cannot depend on itself", "remove "+dep+" from its own depends_on")
			case !known:
				ps.add(field, dep, "unknown service", suggestion(dep, names, "services"))
			case seen[dep]:
				ps.add(field, dep, "listed twice", "list each dependency once")
			}
			seen[dep] = true
		}
	}
	for _, cycle := range c.dependencyCycles() {
		ps.add("services."+cycle[0]+".depends_on", nil, "dependency cycle: "+strings.Join(cycle, " -> "),
			"remove one of these dependencies so the services can start in order")
	}
}

// dependencyCycles finds each cycle once, as a path that starts and ends at
// the cycle's first service in file order. Self-dependencies are reported
// separately and ignored here.
func (c *Cluster) dependencyCycles() [][]string {
	order := map[string]int{}
	for i, s := range c.Services {
		order[s.Name] = i
	}
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	var cycles [][]string
	reported := map[string]bool{}
	var visit func(name string)
	visit = func(name string) {
		state[name] = onStack
		stack = append(stack, name)
		s, _ := c.ServiceByName(name)
		for _, dep := range s.DependsOn {
			if _, known := order[dep]; !known || dep == name {
				continue
			}
			switch state[dep] {
			case unvisited:
				visit(dep)
			case onStack:
				members := stack[slices.Index(stack, dep):]
				start := 0
				for i, m := range members {
					if order[m] < order[members[start]] {
						start = i
					}
				}
				cycle := append(slices.Clone(members[start:]), members[:start]...)
				cycle = append(cycle, cycle[0])
				key := strings.Join(cycle, ">")
				if !reported[key] {
					reported[key] = true
					cycles = append(cycles, cycle)
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, s := range c.Services {
		if state[s.Name] == unvisited {
			visit(s.Name)
		}
	}
	return cycles
}

func (c *Cluster) validateRoutes(ps *Problems) {
	prefixes := map[string]int{}
	for i, r := range c.Routes {
		field := index("routes", i)
		switch {
		case r.Prefix == "":
			ps.add(field+".prefix", nil, "missing", "add the path prefix to match, e.g. `prefix: /api`")
		case !strings.HasPrefix(r.Prefix, "/"):
			ps.add(field+".prefix", r.Prefix, "must start with '/'", "write it like /"+r.Prefix)
		default:
			if first, dup := prefixes[r.Prefix]; dup {
				ps.add(field+".prefix", r.Prefix, fmt.Sprintf("routes[%d] has the same prefix", first), "keep one route per prefix")
			} else {
				prefixes[r.Prefix] = i
			}
		}
		c.validateRouteTargets(ps, field, r)
		if r.Timeout.Duration <= 0 {
			ps.add(field+".timeout", r.Timeout.Duration, "must be positive", "write it like 10s, or leave it out")
		}
		if r.Retries < 0 {
			ps.add(field+".retries", r.Retries, "negative", "use 0 for no retries, or leave it out (2)")
		}
	}
}

// maxRouteWeight bounds a backend's weight (a percentage is the usual use).
const maxRouteWeight = 1000

// validateRouteTargets checks where a route sends: one service, or weighted
// backends, and its header match.
func (c *Cluster) validateRouteTargets(ps *Problems, field string, r Route) {
	known := func(f, name string) {
		if _, ok := c.ServiceByName(name); !ok {
			ps.add(f, name, "unknown service", suggestion(name, c.serviceNames(), "services"))
		}
	}
	switch {
	case r.Service != "" && len(r.Backends) > 0:
		ps.add(field+".service", r.Service, "given with backends", "keep `service:` (one service) or `backends:` (weighted), not both")
	case len(r.Backends) > 0:
		total := 0
		seen := map[string]int{}
		for i, b := range r.Backends {
			bf := index(field+".backends", i)
			switch {
			case b.Service == "":
				ps.add(bf+".service", nil, "missing", "name the service, e.g. `{service: product-v1, weight: 90}`")
			default:
				known(bf+".service", b.Service)
				if first, dup := seen[b.Service]; dup {
					ps.add(bf+".service", b.Service, fmt.Sprintf("backends[%d] names it already", first), "list each service once")
				}
				seen[b.Service] = i
			}
			if b.Weight < 0 || b.Weight > maxRouteWeight {
				ps.add(bf+".weight", b.Weight, fmt.Sprintf("outside 0..%d", maxRouteWeight), "use a share such as 90 and 10 (0 sends it nothing)")
			}
			total += max(b.Weight, 0)
		}
		if total == 0 {
			ps.add(field+".backends", nil, "every weight is 0", "give at least one backend a positive weight")
		}
	case r.Service == "":
		ps.add(field+".service", nil, "missing", "name the service that serves this prefix, or list weighted `backends:`")
	default:
		known(field+".service", r.Service)
	}
	if m := r.Match; m != nil {
		if !validHeaderName(m.Header) {
			ps.add(field+".match.header", m.Header, "not an HTTP header name", "write it like x-canary")
		}
		if m.Value == "" {
			ps.add(field+".match.value", nil, "missing", "give the header value that selects the service, e.g. always")
		}
		if m.Service == "" {
			ps.add(field+".match.service", nil, "missing", "name the service these requests go to")
		} else {
			known(field+".match.service", m.Service)
		}
	}
}

// validHeaderName is an HTTP token (RFC 9110 tchar), not empty.
func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		if r > 126 || r <= 32 || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r) {
			return false
		}
	}
	return true
}

func (c *Cluster) validateGateway(ps *Problems) {
	if c.Gateway.MaxBodyBytes <= 0 {
		ps.add("gateway.max_body_bytes", c.Gateway.MaxBodyBytes, "must be positive", "leave it out (1048576) or write a byte count")
	}
	if !validPort(c.Gateway.MetricsPort) {
		ps.add("gateway.metrics_port", c.Gateway.MetricsPort, "not a TCP port (1..65535)", "leave it out (9100) or write a port")
	}
}

func (c *Cluster) validatePublish(ps *Problems) {
	listens := map[string]int{}
	for i, p := range c.Publish {
		field := index("publish", i)
		if problem := loopbackListenProblem(p.Listen); problem != "" {
			ps.add(field+".listen", p.Listen, problem, "use a loopback address with a port, e.g. 127.0.0.1:8080")
		} else if first, dup := listens[p.Listen]; dup {
			ps.add(field+".listen", p.Listen, fmt.Sprintf("publish[%d] listens there too", first), "give each publish its own port")
		} else {
			listens[p.Listen] = i
		}
		if p.VIP != "" {
			c.validatePublishVIP(ps, field, p)
			continue
		}
		if len(p.Services) == 0 {
			ps.add(field+".services", nil, "missing", "list the gateway services to forward to, e.g. `services: [gateway]`")
		}
		allKnown := true
		for j, name := range p.Services {
			if _, ok := c.ServiceByName(name); !ok {
				allKnown = false
				ps.add(index(field+".services", j), name, "unknown service", suggestion(name, c.serviceNames(), "services"))
			}
		}
		switch {
		case p.Port == 0 && allKnown && len(p.Services) > 0:
			ps.add(field+".port", nil, "the services have no common port to forward to", "set `port:` to the port the services listen on")
		case p.Port != 0 && !validPort(p.Port):
			ps.add(field+".port", p.Port, "not a TCP port (1..65535)", "write the port the services listen on")
		}
	}
}

// loopbackListenProblem explains why listen is not a loopback host:port, or
// returns "".
func loopbackListenProblem(listen string) string {
	if listen == "" {
		return "missing"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "not an address with a port"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() || (ip.Is6() && ip != netip.IPv6Loopback()) {
		return "not a loopback address; published ports must stay on this machine"
	}
	if n, err := strconv.Atoi(port); err != nil || !validPort(n) {
		return "the port is not 1..65535"
	}
	return ""
}

func ifaceNameProblem(name string) string {
	switch {
	case name == "":
		return "missing"
	case len(name) > maxIfaceNameLen:
		return fmt.Sprintf("%d bytes long; Linux interface names have at most %d", len(name), maxIfaceNameLen)
	case strings.ContainsAny(name, "/: \t\n"):
		return "contains '/', ':' or whitespace, which interface names cannot"
	case name == "." || name == "..":
		return "not a usable interface name"
	case name == "eth0" || name == "lo":
		return "already used inside every host"
	}
	return ""
}

func dnsNameProblem(name string) string {
	if name == "" {
		return "missing"
	}
	if len(name) > 253 {
		return "longer than 253 characters"
	}
	for _, label := range strings.Split(name, ".") {
		if !dnsLabelPattern.MatchString(label) {
			return fmt.Sprintf("label %q is not a DNS label (1 to 63 lowercase letters, digits or '-', not starting or ending with '-')", label)
		}
	}
	return ""
}

func validPort(p int) bool { return p >= 1 && p <= 65535 }

func isPrivate(p netip.Prefix) bool {
	for _, r := range privateRanges {
		if containsPrefix(r, p) {
			return true
		}
	}
	return false
}

// containsPrefix reports whether inner lies entirely inside outer.
func containsPrefix(outer, inner netip.Prefix) bool {
	return inner.Bits() >= outer.Bits() && outer.Contains(inner.Addr())
}

// exampleName turns an invalid name into a valid-looking one for the fix.
func exampleName(name string, maxLen int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == '.' || r == ' ':
			b.WriteRune('-')
		}
	}
	out := strings.TrimLeft(b.String(), "-0123456789")
	if len(out) > maxLen {
		out = out[:maxLen]
	}
	out = strings.TrimRight(out, "-")
	if len(out) < 2 {
		out = "my-" + out
		out = strings.TrimRight(out, "-")
	}
	return out
}

func (c *Cluster) subnetNames() []string {
	var out []string
	for _, s := range c.Network.Subnets {
		out = append(out, s.Name)
	}
	return out
}

func (c *Cluster) hostNames() []string {
	var out []string
	for _, h := range c.Hosts {
		out = append(out, h.Name)
	}
	return out
}

func (c *Cluster) serviceNames() []string {
	var out []string
	for _, s := range c.Services {
		out = append(out, s.Name)
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
