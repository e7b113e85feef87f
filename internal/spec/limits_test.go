package spec

import (
	"fmt"
	"strings"
	"testing"
)

// problemOn returns the problem about field, failing the test if there is none.
func problemOn(t *testing.T, ps Problems, field string) Problem {
	t.Helper()
	for _, p := range ps {
		if p.Field == field {
			return p
		}
	}
	t.Fatalf("no problem about %s in:\n%v", field, ps)
	return Problem{}
}

func TestWrittenZeroIsRefusedWhereTheRangeExcludesIt(t *testing.T) {
	cases := []struct {
		name  string
		edits []string
		field string
	}{
		{"version", []string{"version: 1", "version: 0"}, "version"},
		{"overlay port", []string{"port: 4789", "port: 0"}, "overlay.port"},
		{"network mtu", []string{"mtu: 1500", "mtu: 0"}, "network.mtu"},
		{"health timeout", []string{"health: {http: /health}", "health: {http: /health, timeout: 0s}"}, "services.api.health.timeout"},
		{"health interval", []string{"health: {http: /health}", "health: {http: /health, interval: 0}"}, "services.api.health.interval"},
		{"health retries", []string{"health: {http: /health}", "health: {http: /health, retries: 0}"}, "services.api.health.retries"},
		{"route timeout", []string{"- {prefix: /api, service: api}", "- {prefix: /api, service: api, timeout: 0s}"}, "routes[0].timeout"},
		{"publish port", []string{`services: [api]}`, `services: [api], port: 0}`}, "publish[0].port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := problemOn(t, parseProblems(t, edit(t, base, tc.edits...)), tc.field)
			if p.Value != "0" && p.Value != "0s" {
				t.Errorf("value = %q, want the written 0", p.Value)
			}
			if p.Line == 0 || !strings.Contains(p.Fix, "leave the field out") {
				t.Errorf("problem does not point at the line or name the fix: %+v", p)
			}
		})
	}
	// A 0 that means something stays allowed.
	if _, err := Parse([]byte(edit(t, base, "port: 8080\n    depends_on", "port: 8080\n    replicas: 0\n    depends_on")), t.TempDir()); err != nil {
		t.Errorf("replicas: 0 (scaled to zero) refused: %v", err)
	}
}

func TestHugeDurationsAreRefusedNotWrapped(t *testing.T) {
	for _, v := range []string{"18446744074", "9223372037", "3000000000000h"} {
		text := edit(t, base, "health: {http: /health}", "health: {http: /health, interval: "+v+"}")
		p := problemOn(t, parseProblems(t, text), "services.api.health.interval")
		if p.Value != v {
			t.Errorf("%s: value = %q", v, p.Value)
		}
	}
}

func TestReplicasBoundedByTheOverlay(t *testing.T) {
	for _, n := range []string{"100000000", "2147483647", "65280"} {
		text := edit(t, base, "port: 8080\n    depends_on", "port: 8080\n    replicas: "+n+"\n    depends_on")
		p := problemOn(t, parseProblems(t, text), "services.api.replicas")
		if !strings.Contains(p.Message, "room for") {
			t.Errorf("replicas %s: %+v", n, p)
		}
	}
	// The last container that fits: /16 minus network address and the
	// reserved block of 256, minus db's one container.
	text := edit(t, base, "port: 8080\n    depends_on", "port: 8080\n    replicas: 65278\n    depends_on")
	if _, err := Parse([]byte(text), t.TempDir()); err != nil {
		t.Errorf("65278 replicas should fit in 10.10.0.0/16 beside one db: %v", err)
	}
}

func TestServiceNamedLikeAnotherServicesContainer(t *testing.T) {
	text := edit(t, base, addService("  api-2:\n    command: [./x]\n")...)
	text = edit(t, text, "port: 8080\n    depends_on", "port: 8080\n    replicas: 2\n    depends_on")
	problemOn(t, parseProblems(t, text), "services.api-2")
	// With one replica there is no api-2 container to collide with.
	one := edit(t, base, addService("  api-2:\n    command: [./x]\n")...)
	if _, err := Parse([]byte(one), t.TempDir()); err != nil {
		t.Errorf("api-2 beside a one-replica api refused: %v", err)
	}
}

func TestSyntaxErrorNearTheEndOfABigFileIsLocated(t *testing.T) {
	var b strings.Builder
	b.WriteString(base)
	b.WriteString("x-padding:\n")
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&b, "  k%d: value number %d\n", i, i)
	}
	lines := strings.Count(b.String(), "\n")
	b.WriteString("  broken: [unclosed, list\n")
	b.WriteString("  after: 1\n")
	ps := parseProblems(t, b.String())
	p := problemOn(t, ps, "(yaml)")
	if p.Line < lines+1 || p.Line > lines+2 {
		t.Errorf("syntax error reported at line %d, want %d or %d", p.Line, lines+1, lines+2)
	}
}

func TestMergeKeysInNamedMappings(t *testing.T) {
	text := `version: 1
name: lab1
x-subnets: &subnets {a: 192.168.1.0/24}
x-env: &env {LOG: debug, MODE: prod}
x-services: &svcs
  db: {command: [./db], port: 5432}
network:
  cidr: 192.168.0.0/16
  subnets:
    <<: *subnets
    b: 192.168.2.0/24
overlay: {vni: 444}
hosts:
  - {name: host1, subnet: a}
  - {name: host2, subnet: b}
services:
  <<: *svcs
  api:
    command: [./api]
    env:
      <<: *env
      MODE: test
`
	c, err := Parse([]byte(text), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.SubnetByName("a"); !ok {
		t.Error("merged subnet a is missing")
	}
	if _, ok := c.ServiceByName("db"); !ok {
		t.Error("merged service db is missing")
	}
	api, _ := c.ServiceByName("api")
	if api.Env["LOG"] != "debug" || api.Env["MODE"] != "test" {
		t.Errorf("api env = %v, want LOG=debug from the merge and MODE=test written explicitly", api.Env)
	}
}

func TestFileSizeAndAliasExpansionCaps(t *testing.T) {
	big := base + "x-pad: \"" + strings.Repeat("a", MaxFileBytes) + "\"\n"
	problemOn(t, parseProblems(t, big), "(file)")

	// Nine levels of ten aliases each: 10^9 values once expanded.
	var b strings.Builder
	b.WriteString(base)
	b.WriteString("x-l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "x-l%d: &l%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	p := problemOn(t, parseProblems(t, b.String()), "(yaml)")
	if !strings.Contains(p.Message, "aliases") {
		t.Errorf("alias bomb: %+v", p)
	}
}
