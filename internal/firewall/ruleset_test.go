package firewall

import (
	"slices"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/naming"
)

func chainRules(t *testing.T, tables []Table, f Family, chain string) []string {
	t.Helper()
	for _, tb := range tables {
		if tb.Family != f {
			continue
		}
		for _, c := range tb.Chains {
			if c.Name == chain {
				var out []string
				for _, r := range c.Rules {
					out = append(out, r.String())
				}
				return out
			}
		}
	}
	t.Fatalf("no chain %s in %s table", chain, f)
	return nil
}

func TestBuildHostTable(t *testing.T) {
	tables := Build(sampleConfig())
	if len(tables) != 2 || tables[0].Family != Inet || tables[1].Family != Bridge {
		t.Fatalf("want an inet and a bridge table, got %+v", tables)
	}
	for _, tc := range []struct {
		chain string
		want  []string
	}{
		{"input", []string{
			`iifname "br-vxlan" ct state established,related accept`,
			`iifname "br-vxlan" meta nfproto ipv4 ip daddr 10.10.0.1 udp dport 53 accept`,
			`iifname "br-vxlan" meta nfproto ipv4 ip daddr 10.10.0.1 tcp dport 53 accept`,
			`iifname "br-vxlan" counter name "container_to_host" drop`,
			`meta nfproto ipv4 udp dport 4789 ip saddr != @members counter name "vxlan_foreign" drop`,
			`meta nfproto ipv4 tcp dport 2379 ip saddr != @clients counter name "control_foreign" drop`,
			`meta nfproto ipv4 tcp dport 2380 ip saddr != @managers counter name "control_foreign" drop`,
			`meta nfproto ipv4 udp dport 7947 ip saddr != @members counter name "control_foreign" drop`,
			`meta nfproto ipv4 udp dport 7948 ip saddr != @members counter name "control_foreign" drop`,
		}},
		{"notrack-in", []string{`meta nfproto ipv4 udp dport 4789 notrack`}},
		{"notrack-out", []string{`meta nfproto ipv4 udp dport 4789 notrack`}},
		{"forward", []string{
			`iifname "br-vxlan" oifname != "br-vxlan" ct state established,related accept`,
			`iifname "br-vxlan" oifname != "br-vxlan" counter name "container_routed" drop`,
		}},
	} {
		if got := chainRules(t, tables, Inet, tc.chain); !slices.Equal(got, tc.want) {
			t.Errorf("inet chain %s:\n got %s\nwant %s", tc.chain, strings.Join(got, "\n     "), strings.Join(tc.want, "\n     "))
		}
	}
	sh := tables[0].Shape()
	for set, want := range map[string][]string{
		"members":  {"192.168.1.10", "192.168.2.10", "192.168.3.10"},
		"managers": {"192.168.1.10", "192.168.2.10"},
		"clients":  {"192.168.1.1", "192.168.1.10", "192.168.2.10", "192.168.3.10"},
	} {
		if !slices.Equal(sh.Sets[set], want) {
			t.Errorf("set %s = %v, want %v", set, sh.Sets[set], want)
		}
	}
}

func TestBuildBridgeTable(t *testing.T) {
	tables := Build(sampleConfig())
	api, web := naming.HostVeth("api-1"), naming.HostVeth("web-1")
	first, second := api, web
	if web < api {
		first, second = web, api
	}
	want := []string{
		`iifname != "vw*" accept`,
		`iifname "` + first + `" jump ` + first,
		`iifname "` + second + `" jump ` + second,
		`iifname "vw*" counter name "spoofed" drop`,
	}
	if got := chainRules(t, tables, Bridge, "pre"); !slices.Equal(got, want) {
		t.Errorf("bridge chain pre:\n got %q\nwant %q", got, want)
	}
	wantAPI := []string{
		`ether saddr != 02:42:0a:0a:00:05 counter name "spoofed" drop`,
		`ether type ip ip saddr != 10.10.0.5 counter name "spoofed" drop`,
		`ether type arp arp saddr ether != 02:42:0a:0a:00:05 counter name "spoofed" drop`,
		`ether type arp arp saddr ip != 10.10.0.5 counter name "spoofed" drop`,
		`ether type != ip ether type != arp counter name "spoofed" drop`,
		`accept`,
	}
	if got := chainRules(t, tables, Bridge, api); !slices.Equal(got, wantAPI) {
		t.Errorf("bridge chain of api-1:\n got %q\nwant %q", got, wantAPI)
	}
}

func TestBuildNoContainersDropsEveryVeth(t *testing.T) {
	c := sampleConfig()
	c.Containers = nil
	got := chainRules(t, Build(c), Bridge, "pre")
	want := []string{`iifname != "vw*" accept`, `iifname "vw*" counter name "spoofed" drop`}
	if !slices.Equal(got, want) {
		t.Errorf("pre = %q, want %q", got, want)
	}
}

func TestBuildOffIsNoTables(t *testing.T) {
	if got := Build(Config{}); got != nil {
		t.Errorf("Build(zero) = %+v, want no tables", got)
	}
}

func TestEveryCounterIsDeclared(t *testing.T) {
	declared := map[string]bool{}
	for _, tb := range Build(sampleConfig()) {
		for _, c := range tb.Counters {
			declared[c] = true
		}
		for _, ch := range tb.Chains {
			for _, r := range ch.Rules {
				if r.Counter != "" && !slices.Contains(tb.Counters, r.Counter) {
					t.Errorf("%s table: rule %q uses counter %s it does not declare", tb.Family, r, r.Counter)
				}
			}
		}
	}
	for _, name := range CounterNames() {
		if !declared[name] {
			t.Errorf("counter %s is shown by status but in no table", name)
		}
	}
}
