package native

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/chaos"
	"github.com/weft-dev/weft/internal/fault"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

func testTargets(t *testing.T) targets {
	t.Helper()
	c, err := spec.Parse([]byte(`
version: 1
name: tc
provider: lab
network: {cidr: 192.168.0.0/16, subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}}
overlay: {vni: 5, cidr: 10.10.0.0/16}
hosts: [{name: host1, subnet: a}, {name: host2, subnet: b}]
services:
  gw: {command: [x], host: host1, ip: 10.10.0.100}
  db: {command: [x], host: host2, ip: 10.10.0.9, volumes: [{name: data, path: /d}]}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	st := api.Status{Containers: []model.ContainerStatus{
		{Container: "gw-1", Service: "gw", Host: "host1", IP: netip.MustParseAddr("10.10.0.100"), Netns: "weft.tc.c.host1.gw-1"},
		{Container: "db-1", Service: "db", Host: "host2", IP: netip.MustParseAddr("10.10.0.9"), Netns: "weft.tc.c.host2.db-1"},
	}}
	return targets{spec: c, status: st}
}

func TestBuildRecordResolvesTargets(t *testing.T) {
	tg := testTargets(t)
	now := time.Unix(1000, 0)
	a := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		fn    string
		args  map[string]any
		parts []fault.Part
	}{
		{"loss", a("from", "gw", "to", []any{"db"}, "percent", int64(20), "duration", "10s"),
			[]fault.Part{{Netns: "weft.tc.c.host1.gw-1", Container: "gw-1", Peers: []netip.Addr{netip.MustParseAddr("10.10.0.9")}}}},
		{"loss", a("from", "host1", "to", "db", "percent", int64(5), "duration", int64(3)),
			[]fault.Part{{Netns: "weft.tc.h.host1", Host: "host1", Peers: []netip.Addr{netip.MustParseAddr("192.168.2.10")}}}},
		{"partition", a("groups", []any{[]any{"host1"}, []any{"db"}}, "duration", "5s"),
			[]fault.Part{
				{Netns: "weft.tc.h.host1", Host: "host1", Peers: []netip.Addr{netip.MustParseAddr("192.168.2.10")}, Inbound: true},
				{Netns: "weft.tc.h.host2", Host: "host2", Peers: []netip.Addr{netip.MustParseAddr("192.168.1.10")}, Inbound: true}}},
		{"bandwidth", a("target", "db", "rate", "8mbit", "duration", "5s"),
			[]fault.Part{{Netns: "weft.tc.c.host2.db-1", Dev: "eth0", Container: "db-1"},
				{Netns: "weft.tc.h.host2", Dev: tgVeth("db-1"), Container: "db-1", Host: "host2"}}},
		{"crash-host", a("container", "gw-1", "duration", "5s"), []fault.Part{{Host: "host1"}}},
		{"kill-service", a("service", "db"), []fault.Part{{Container: "db-1", Host: "host2"}}},
		{"fill-disk", a("container", "db-1", "bytes", "1MiB", "duration", "5s"), nil},
	}
	for _, c := range cases {
		r, err := buildRecord(tg, "/var/lib/weft", c.fn, c.args, now)
		if err != nil {
			t.Errorf("%s %v: %v", c.fn, c.args, err)
			continue
		}
		if c.fn == "fill-disk" {
			if len(r.Parts) != 1 || !strings.HasPrefix(r.Parts[0].Path, "/var/lib/weft/tc/volumes/db-1/data/.weft-fault-") || r.Bytes != 1<<20 {
				t.Errorf("fill-disk record %+v", r)
			}
			continue
		}
		if !reflect.DeepEqual(r.Parts, c.parts) {
			t.Errorf("%s %v:\n got %+v\nwant %+v", c.fn, c.args, r.Parts, c.parts)
		}
		if r.Mechanism == "" || r.Cluster != "tc" {
			t.Errorf("%s: mechanism %q cluster %q", c.fn, r.Mechanism, r.Cluster)
		}
	}
	r, _ := buildRecord(tg, "", "bandwidth", a("target", "db", "rate", "8mbit", "duration", "5s"), now)
	if r.RateBytes != 1_000_000 || !r.Expires.Equal(now.Add(5*time.Second)) {
		t.Errorf("rate %d expires %s", r.RateBytes, r.Expires)
	}
	if _, err := buildRecord(tg, "", "loss", a("from", "nothing", "percent", int64(5), "duration", "1s"), now); err == nil {
		t.Error("an unknown target is accepted")
	}
	if _, err := buildRecord(tg, "", "fill-disk", a("container", "gw-1", "bytes", "1", "duration", "1s"), now); err == nil {
		t.Error("fill-disk of a container without volumes is accepted")
	}
}

func tgVeth(c string) string { return naming.HostVeth(c) }

func TestCheckNamesProblems(t *testing.T) {
	var ps chaos.Problems
	Check("m[0].provider", map[string]any{"func": "latency", "arguments": map[string]any{"target": "x", "delay": "20s", "duration": "2h"}}, &ps)
	Check("m[1].provider", map[string]any{"func": "http", "arguments": map[string]any{"url": "http://10.10.0.5/"}}, &ps)
	Check("m[2].provider", map[string]any{"func": "nope"}, &ps)
	Check("m[3].provider", map[string]any{"func": "bandwidth", "arguments": map[string]any{"target": "x", "rate": "fast", "duration": "1s"}}, &ps)
	Check("m[4].provider", map[string]any{"func": "loss", "arguments": map[string]any{"from": "x", "percent": int64(101), "duration": "1s"}}, &ps)
	Check("m[5].provider", map[string]any{"func": "crash-host", "arguments": map[string]any{"duration": "1s"}}, &ps)
	var fields []string
	for _, p := range ps {
		fields = append(fields, p.Field)
	}
	for _, want := range []string{"m[0].provider.arguments.delay", "m[0].provider.arguments.duration", "m[1].provider.arguments.url",
		"m[2].provider.func", "m[3].provider.arguments.rate", "m[4].provider.arguments.percent", "m[5].provider.arguments.host"} {
		found := false
		for _, f := range fields {
			found = found || f == want
		}
		if !found {
			t.Errorf("no problem for %s (got %v)", want, fields)
		}
	}
	ps = nil
	Check("ok", map[string]any{"func": "latency", "arguments": map[string]any{"target": "x", "delay": "${d}", "duration": "10s"}}, &ps)
	if len(ps) != 0 {
		t.Errorf("a valid provider has problems: %v", ps)
	}
}

func TestRateAndSize(t *testing.T) {
	for in, want := range map[string]uint64{"8mbit": 1_000_000, "1gbit": 125_000_000, "512kbit": 64_000, "2mbps": 2_000_000} {
		if got, err := Rate(in); err != nil || got != want {
			t.Errorf("Rate(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"fast", "1bit", "-3mbit"} {
		if _, err := Rate(bad); err == nil {
			t.Errorf("Rate(%s) accepted", bad)
		}
	}
	for in, want := range map[string]int64{"256MiB": 256 << 20, "1G": 1 << 30, "1000": 1000, "2mb": 2_000_000} {
		if got, err := Size(in); err != nil || got != want {
			t.Errorf("Size(%s) = %d, %v", in, got, err)
		}
	}
}
