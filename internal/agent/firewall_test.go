package agent

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/firewall"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

const firewallFile = `version: 1
name: fwt
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16, port: 8472}
hosts:
  - {name: host1, subnet: a, roles: [manager]}
  - {name: host2, subnet: b, roles: [worker]}
  - {name: host3, subnet: b, roles: [manager]}
services:
  web: {command: [sleep, infinity]}
`

func TestFirewallConfigFromTheFile(t *testing.T) {
	c, err := spec.Parse([]byte(firewallFile), "/srv")
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("10.10.0.7")
	local := map[string]model.Assignment{"web-1": {Container: "web-1", Service: "web", Host: "host2", IP: ip}}
	got := firewallConfig(c, nil, "host2", local)
	a := netip.MustParseAddr
	if want := []netip.Addr{a("192.168.1.10"), a("192.168.2.10"), a("192.168.2.11")}; !slices.Equal(got.Members, want) {
		t.Errorf("members = %v, want every host of the file %v", got.Members, want)
	}
	if want := []netip.Addr{a("192.168.1.10"), a("192.168.2.11")}; !slices.Equal(got.Managers, want) {
		t.Errorf("managers = %v, want %v", got.Managers, want)
	}
	if want := []netip.Addr{a("192.168.1.1"), a("192.168.2.1")}; !slices.Equal(got.Operators, want) {
		t.Errorf("operators = %v, want the lab router's legs %v", got.Operators, want)
	}
	if got.VXLANPort != 8472 || got.ClientPort != 2379 || got.PeerPort != 2380 || !slices.Equal(got.ProbePorts, []uint16{7947, 7948}) || got.DNSPort != 53 {
		t.Errorf("ports = %+v", got)
	}
	if got.Bridge != "br-vxlan" || got.BridgeAddr != c.HostOverlayAddr("host2") {
		t.Errorf("bridge %s %s, want br-vxlan %s", got.Bridge, got.BridgeAddr, c.HostOverlayAddr("host2"))
	}
	want := []firewall.Container{{Name: "web-1", Veth: naming.HostVeth("web-1"), IP: ip, MAC: naming.MACFromIP(ip)}}
	if len(got.Containers) != 1 || got.Containers[0].Veth != want[0].Veth || got.Containers[0].IP != ip || got.Containers[0].MAC.String() != want[0].MAC.String() {
		t.Errorf("containers = %+v, want %+v", got.Containers, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("the agent's config does not validate: %v", err)
	}

	off := false
	c.Firewall = &off
	if cfg := firewallConfig(c, nil, "host2", local); !cfg.Off() {
		t.Errorf("firewall: false gives %+v, want the zero config", cfg)
	}
}

// A host the next file adds is a member before that file is applied: its
// agent must reach etcd to become ready, and up waits for it.
func TestFirewallMembersIncludeTheNextFilesHosts(t *testing.T) {
	applied, err := spec.Parse([]byte(firewallFile), "/srv")
	if err != nil {
		t.Fatal(err)
	}
	next, err := spec.Parse([]byte(strings.Replace(firewallFile, "  - {name: host3, subnet: b, roles: [manager]}\n",
		"  - {name: host3, subnet: b, roles: [manager]}\n  - {name: host4, subnet: a, roles: [worker]}\n", 1)), "/srv")
	if err != nil {
		t.Fatal(err)
	}
	got := firewallConfig(applied, next, "host1", nil)
	a := netip.MustParseAddr
	if want := []netip.Addr{a("192.168.1.10"), a("192.168.2.10"), a("192.168.2.11"), a("192.168.1.11")}; !slices.Equal(got.Members, want) {
		t.Errorf("members = %v, want the applied hosts and the next file's host4: %v", got.Members, want)
	}
	if want := []netip.Addr{a("192.168.1.10"), a("192.168.2.11")}; !slices.Equal(got.Managers, want) {
		t.Errorf("managers = %v, want %v", got.Managers, want)
	}
}
