package spec

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Defaults of the cluster file.
const (
	DefaultVersion      = 1
	DefaultProvider     = "lab"
	DefaultDomain       = "weft"
	DefaultMTU          = 1500
	DefaultOverlayPort  = 4789
	DefaultBridge       = "br-vxlan"
	DefaultManagers     = 3
	DefaultMaxBodyBytes = 1 << 20
	DefaultMetricsPort  = 9100
	DefaultGatewayName  = "api-gateway"
	defaultRouteRetries = 2
	firstHostOctet      = 10 // hosts get .10, .11, ... of their subnet
)

// DefaultOverlayCIDR is the overlay network when the file names none.
var DefaultOverlayCIDR = netip.MustParsePrefix("10.10.0.0/16")

const defaultRouteTimeout = 10 * time.Second

// ApplyDefaults fills every field the file left out. It is idempotent.
//
// Two defaults cannot be told apart from a written zero and are set by Parse
// while decoding instead: services' replicas (1; 0 means scaled to zero) and
// routes' retries (2; 0 means no retry).
func (c *Cluster) ApplyDefaults() {
	if c.Version == 0 {
		c.Version = DefaultVersion
	}
	if c.Provider == "" {
		c.Provider = DefaultProvider
	}
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	if c.Network.MTU == 0 {
		c.Network.MTU = DefaultMTU
	}
	if c.Overlay.Port == 0 {
		c.Overlay.Port = DefaultOverlayPort
	}
	if !c.Overlay.CIDR.IsValid() {
		c.Overlay.CIDR = DefaultOverlayCIDR
	}
	if c.Overlay.MTU == 0 {
		c.Overlay.MTU = c.Network.MTU - VXLANOverhead
	}
	if c.Overlay.Bridge == "" {
		c.Overlay.Bridge = DefaultBridge
	}
	if c.Provider == ProviderSSH {
		// A server's address is its own: never made up.
		c.SSH.applyDefaults(c.Dir)
		for i := range c.Hosts {
			if c.Hosts[i].InstallRoot == "" {
				c.Hosts[i].InstallRoot = c.SSH.InstallRoot
			}
		}
	} else {
		c.defaultHostAddresses()
	}
	c.defaultManagers()
	if c.RescheduleAfter.Duration == 0 {
		c.RescheduleAfter.Duration = DefaultRescheduleAfter
	}
	for i := range c.Services {
		c.Services[i].applyDefaults(c.Dir)
		c.Services[i].applyRescheduleDefaults(c.RescheduleAfter)
		c.Services[i].applyUpdateDefaults()
	}
	for i := range c.Routes {
		if c.Routes[i].Timeout.Duration == 0 {
			c.Routes[i].Timeout.Duration = defaultRouteTimeout
		}
	}
	if c.Gateway.MaxBodyBytes == 0 {
		c.Gateway.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Gateway.MetricsPort == 0 {
		c.Gateway.MetricsPort = DefaultMetricsPort
	}
	if c.Gateway.Name == "" {
		c.Gateway.Name = DefaultGatewayName
	}
	c.defaultVIPs()
	for i := range c.Publish {
		if v, ok := c.VIPByName(c.Publish[i].VIP); ok && c.Publish[i].VIP != "" && c.Publish[i].Port == 0 {
			c.Publish[i].Port = v.Port
		}
		if c.Publish[i].Port == 0 {
			c.Publish[i].Port = c.sharedPort(c.Publish[i].Services)
		}
	}
}

func (s *Service) applyDefaults(dir string) {
	if s.Restart == "" {
		s.Restart = RestartAlways
	}
	if s.Image != "" {
		// An image's command names a program inside the image.
		if src, err := ParseImage(s.Image); err == nil {
			s.Image = src.withDir(dir).String()
		}
	} else if len(s.Command) > 0 && dir != "" && strings.Contains(s.Command[0], "/") && !filepath.IsAbs(s.Command[0]) {
		s.Command[0] = filepath.Join(dir, s.Command[0])
	}
	if h := s.Health; h != nil {
		*h = h.Defaulted()
		if h.Port == 0 {
			h.Port = s.Port
		}
	}
}

// defaultHostAddresses gives each host without an address the next free one
// of its subnet from .10 up, in file order, never one written explicitly.
func (c *Cluster) defaultHostAddresses() {
	taken := map[netip.Addr]bool{}
	for _, h := range c.Hosts {
		if h.Address.IsValid() {
			taken[h.Address] = true
		}
	}
	for i := range c.Hosts {
		h := &c.Hosts[i]
		if h.Address.IsValid() {
			continue
		}
		subnet, ok := c.SubnetByName(h.Subnet)
		if !ok || !subnet.CIDR.IsValid() || !subnet.CIDR.Addr().Is4() {
			continue
		}
		broadcast := lastAddr(subnet.CIDR)
		for a := addOffset(subnet.CIDR.Addr(), firstHostOctet); subnet.CIDR.Contains(a) && a != broadcast; a = a.Next() {
			if !taken[a] {
				h.Address = a
				taken[a] = true
				break
			}
		}
	}
}

// defaultManagers makes the first three hosts not marked worker managers when
// the file names no manager.
func (c *Cluster) defaultManagers() {
	for _, h := range c.Hosts {
		if slices.Contains(h.Roles, RoleManager) {
			return
		}
	}
	picked := 0
	for i := range c.Hosts {
		if picked == DefaultManagers {
			return
		}
		if slices.Contains(c.Hosts[i].Roles, RoleWorker) {
			continue
		}
		c.Hosts[i].Roles = append(c.Hosts[i].Roles, RoleManager)
		picked++
	}
}

// sharedPort is the port all the named services serve on, or 0 when they
// have none or differ.
func (c *Cluster) sharedPort(services []string) int {
	port := 0
	for _, name := range services {
		s, ok := c.ServiceByName(name)
		if !ok || s.Port == 0 || (port != 0 && s.Port != port) {
			return 0
		}
		port = s.Port
	}
	return port
}
