package spec

import (
	"net/netip"
	"strings"
	"testing"
)

// vipBase is base with two gateway-like services and a VIP published on 127.0.0.1.
var vipBase = strings.Replace(base, "publish:\n  - {listen: \"127.0.0.1:8080\", services: [api]}\n",
	`  - {prefix: /x, service: api}
vips:
  - {name: shop, address: 192.168.0.100, port: 80, services: [api]}
publish:
  - {listen: "127.0.0.1:8080", vip: shop}
`, 1)

func TestVIPParsesWithDefaults(t *testing.T) {
	c, err := Parse([]byte(vipBase), "/srv/lab")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(c.VIPs) != 1 {
		t.Fatalf("vips = %+v, want one", c.VIPs)
	}
	v := c.VIPs[0]
	if v.Name != "shop" || v.Address != netip.MustParseAddr("192.168.0.100") || v.Port != 80 || v.Mode != VIPActiveStandby || v.TargetPort != 8080 {
		t.Errorf("vip = %+v, want shop 192.168.0.100:80 active-standby delivered to 8080", v)
	}
	if p := c.Publish[0]; p.VIP != "shop" || p.Port != 80 {
		t.Errorf("publish = %+v, want through vip shop on port 80", p)
	}
}

func TestVIPActiveActiveParses(t *testing.T) {
	c, err := Parse([]byte(edit(t, vipBase, "services: [api]}\npublish", "services: [api], mode: active-active}\npublish")), "/srv/lab")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if c.VIPs[0].Mode != VIPActiveActive {
		t.Errorf("mode = %q, want active-active", c.VIPs[0].Mode)
	}
}

func TestVIPRefusals(t *testing.T) {
	line := "{name: shop, address: 192.168.0.100, port: 80, services: [api]}"
	cases := []struct {
		name, replace, field, fragment string
	}{
		{"no name", "{address: 192.168.0.100, port: 80, services: [api]}", "vips[0].name", "missing"},
		{"bad name", "{name: Shop_1, address: 192.168.0.100, port: 80, services: [api]}", "vips[0].name", "shop-1"},
		{"no address", "{name: shop, port: 80, services: [api]}", "vips[0].address", "outside every subnet"},
		{"address in a subnet", "{name: shop, address: 192.168.1.100, port: 80, services: [api]}", "vips[0].address", "subnet a"},
		{"address outside network", "{name: shop, address: 10.20.0.1, port: 80, services: [api]}", "vips[0].address", "outside network.cidr"},
		{"ipv6 address", "{name: shop, address: 'fd00::1', port: 80, services: [api]}", "vips[0].address", "IPv4"},
		{"no port", "{name: shop, address: 192.168.0.100, services: [api]}", "vips[0].port", "port: 80"},
		{"port too large", "{name: shop, address: 192.168.0.100, port: 70000, services: [api]}", "vips[0].port", "1..65535"},
		{"no services", "{name: shop, address: 192.168.0.100, port: 80}", "vips[0].services", "missing"},
		{"unknown service", "{name: shop, address: 192.168.0.100, port: 80, services: [apj]}", "vips[0].services[0]", "did you mean `api`?"},
		{"no common port", "{name: shop, address: 192.168.0.100, port: 80, services: [api, db]}", "vips[0].target_port", "target_port"},
		{"bad target port", "{name: shop, address: 192.168.0.100, port: 80, services: [api], target_port: -1}", "vips[0].target_port", "1..65535"},
		{"unknown mode", "{name: shop, address: 192.168.0.100, port: 80, services: [api], mode: hot}", "vips[0].mode", "active-standby"},
		{"two vips one name", line + "\n  - {name: shop, address: 192.168.0.101, port: 80, services: [api]}", "vips[1].name", "vips[0]"},
		{"two vips one address", line + "\n  - {name: shop2, address: 192.168.0.100, port: 80, services: [api]}", "vips[1].address", "vips[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := parseProblems(t, edit(t, vipBase, line, tc.replace))
			found := false
			for _, p := range ps {
				if p.Field == tc.field && strings.Contains(p.Message+" "+p.Fix, tc.fragment) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem on %s mentioning %q; got:\n%v", tc.field, tc.fragment, ps)
			}
		})
	}
}

func TestPublishVIPRefusals(t *testing.T) {
	cases := []struct {
		name, replace, field, fragment string
	}{
		{"unknown vip", `{listen: "127.0.0.1:8080", vip: shpo}`, "publish[0].vip", "did you mean `shop`?"},
		{"vip and services", `{listen: "127.0.0.1:8080", vip: shop, services: [api]}`, "publish[0].services", "not both"},
		{"vip with another port", `{listen: "127.0.0.1:8080", vip: shop, port: 81}`, "publish[0].port", "port 80"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := parseProblems(t, edit(t, vipBase, `{listen: "127.0.0.1:8080", vip: shop}`, tc.replace))
			found := false
			for _, p := range ps {
				if p.Field == tc.field && strings.Contains(p.Message+" "+p.Fix, tc.fragment) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem on %s mentioning %q; got:\n%v", tc.field, tc.fragment, ps)
			}
		})
	}
}
