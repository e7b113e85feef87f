package firewall

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" = valid
	}{
		{"sample", func(*Config) {}, ""},
		{"off is valid", func(c *Config) { *c = Config{} }, ""},
		{"IPv6 member", func(c *Config) { c.Members[0] = netip.MustParseAddr("fd00::1") }, "firewall Members: fd00::1 is not an IPv4 address"},
		{"no DNS port", func(c *Config) { c.DNSPort = 0 }, "firewall DNSPort is 0"},
		{"probe port 0", func(c *Config) { c.ProbePorts[1] = 0 }, "firewall ProbePorts[1] is 0"},
		{"no bridge", func(c *Config) { c.Bridge = "" }, `firewall Bridge "" is not an interface name`},
		{"bridge address", func(c *Config) { c.BridgeAddr = netip.Addr{} }, "firewall BridgeAddr invalid IP is not an IPv4 address"},
		{"foreign veth", func(c *Config) { c.Containers[0].Veth = "eth0" }, `veth "eth0" does not start with "vw"`},
		{"shared veth", func(c *Config) { c.Containers[1].Veth = c.Containers[0].Veth }, "is also web-1's"},
		{"multicast MAC", func(c *Config) { c.Containers[0].MAC = net.HardwareAddr{1, 0, 0, 0, 0, 1} }, "not a unicast Ethernet address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleConfig()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
