package spec

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// base is a small valid file the refusal cases below break one thing at a time.
const base = `version: 1
name: lab1
provider: lab
domain: weft
network:
  cidr: 192.168.0.0/16
  mtu: 1500
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16, port: 4789, bridge: br-vxlan}
hosts:
  - {name: host1, subnet: a}
  - {name: host2, subnet: b}
services:
  api:
    command: [./api]
    port: 8080
    depends_on: [db]
    health: {http: /health}
  db:
    command: [./db]
    port: 5432
    health: {tcp: 5432}
routes:
  - {prefix: /api, service: api}
publish:
  - {listen: "127.0.0.1:8080", services: [api]}
`

// edit replaces the first occurrence of each old string with its new one,
// failing the test if old is not in the file (the case would test nothing).
func edit(t *testing.T, text string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("edit: %q not found in the file", pairs[i])
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	return text
}

// addService inserts a service definition before routes.
func addService(def string) []string { return []string{"routes:\n", def + "routes:\n"} }

func parseProblems(t *testing.T, text string) Problems {
	t.Helper()
	c, err := Parse([]byte(text), "/srv/lab")
	if err == nil {
		t.Fatalf("file parsed without problems:\n%s", text)
	}
	if c != nil {
		t.Errorf("Parse returned a cluster together with problems")
	}
	problems, ok := err.(Problems)
	if !ok {
		t.Fatalf("error is %T, want Problems: %v", err, err)
	}
	return problems
}

func TestBaseParsesClean(t *testing.T) {
	if _, err := Parse([]byte(base), "/srv/lab"); err != nil {
		t.Fatalf("base file: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	long41 := strings.Repeat("s", 41)
	cases := []struct {
		name    string
		edits   []string
		field   string
		message string // a fragment the problem's message or fix must contain
	}{
		{"version 2", []string{"version: 1", "version: 2"}, "version", "version 1"},
		{"provider aws", []string{"provider: lab", "provider: aws"}, "provider", "lab"},
		{"missing name", []string{"name: lab1\n", ""}, "name", "missing"},
		{"name with uppercase", []string{"name: lab1", "name: Lab_1"}, "name", "lab-1"},
		{"name too long", []string{"name: lab1", "name: abcdefghijklmnopqrstu"}, "name", "20"},
		{"name of one letter", []string{"name: lab1", "name: a"}, "name", "2 to 20"},
		{"network cidr missing", []string{"  cidr: 192.168.0.0/16\n", ""}, "network.cidr", "missing"},
		{"network cidr public", []string{"cidr: 192.168.0.0/16", "cidr: 8.8.0.0/16"}, "network.cidr", "private"},
		{"network cidr bad syntax", []string{"cidr: 192.168.0.0/16", "cidr: 192.168.0.0/33"}, "network.cidr", "CIDR"},
		{"network cidr not masked", []string{"cidr: 192.168.0.0/16", "cidr: 192.168.0.1/16"}, "network.cidr", "192.168.0.0/16"},
		{"no subnets", []string{"  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}\n", ""}, "network.subnets", "subnet"},
		{"subnet outside network", []string{"b: 192.168.2.0/24", "b: 10.20.2.0/24"}, "network.subnets.b", "outside"},
		{"overlapping subnets", []string{"b: 192.168.2.0/24", "b: 192.168.1.128/25"}, "network.subnets.b", "subnet a"},
		{"subnet too small", []string{"b: 192.168.2.0/24", "b: 192.168.2.0/29"}, "network.subnets.b", "/28"},
		{"host in unknown subnet", []string{"{name: host2, subnet: b}", "{name: host2, subnet: z}"}, "hosts[1].subnet", "a, b"},
		{"host without subnet", []string{"{name: host2, subnet: b}", "{name: host2}"}, "hosts[1].subnet", "missing"},
		{"host address outside subnet", []string{"{name: host1, subnet: a}", "{name: host1, subnet: a, address: 192.168.2.5}"}, "hosts[0].address", "outside"},
		{"host on network address", []string{"{name: host1, subnet: a}", "{name: host1, subnet: a, address: 192.168.1.0}"}, "hosts[0].address", "network address"},
		{"host on broadcast", []string{"{name: host1, subnet: a}", "{name: host1, subnet: a, address: 192.168.1.255}"}, "hosts[0].address", "broadcast"},
		{"host on router", []string{"{name: host1, subnet: a}", "{name: host1, subnet: a, address: 192.168.1.1}"}, "hosts[0].address", "router"},
		{"host address bad syntax", []string{"{name: host1, subnet: a}", "{name: host1, subnet: a, address: 192.168.1.x}"}, "hosts[0].address", "not an IP"},
		{"two hosts on one address", []string{"{name: host1, subnet: a}", "{name: host1, subnet: a, address: 192.168.1.20}",
			"{name: host2, subnet: b}", "{name: host2, subnet: a, address: 192.168.1.20}"}, "hosts[1].address", "host1"},
		{"two hosts with one name", []string{"{name: host2, subnet: b}", "{name: host1, subnet: b}"}, "hosts[1].name", "hosts[0]"},
		{"host name invalid", []string{"{name: host2, subnet: b}", "{name: Host_2, subnet: b}"}, "hosts[1].name", "host-2"},
		{"host name too long", []string{"{name: host2, subnet: b}", "{name: host2host2host2host2x, subnet: b}"}, "hosts[1].name", "20"},
		{"unknown role", []string{"{name: host2, subnet: b}", "{name: host2, subnet: b, roles: [boss]}"}, "hosts[1].roles[0]", "manager"},
		{"no manager", []string{"{name: host1, subnet: a}", "{name: host1, subnet: a, roles: [worker]}",
			"{name: host2, subnet: b}", "{name: host2, subnet: b, roles: [worker]}"}, "hosts", "manager"},
		{"no hosts", []string{"  - {name: host1, subnet: a}\n  - {name: host2, subnet: b}\n", ""}, "hosts", "host"},
		{"pinned ips equal", []string{"    command: [./api]\n", "    command: [./api]\n    ip: 10.10.0.5\n",
			"    command: [./db]\n", "    command: [./db]\n    ip: 10.10.0.5\n"}, "services.db.ip", "api"},
		{"pinned ip is a host's overlay address", []string{"    command: [./api]\n", "    command: [./api]\n    ip: 10.10.255.1\n"}, "services.api.ip", "host1"},
		{"pinned ip outside overlay", []string{"    command: [./api]\n", "    command: [./api]\n    ip: 10.20.0.5\n"}, "services.api.ip", "outside the overlay cidr 10.10.0.0/16"},
		{"pinned ip in reserved block", []string{"    command: [./api]\n", "    command: [./api]\n    ip: 10.10.255.200\n"}, "services.api.ip", "reserved"},
		{"pinned ip is network address", []string{"    command: [./api]\n", "    command: [./api]\n    ip: 10.10.0.0\n"}, "services.api.ip", "reserved"},
		{"pinned ip bad syntax", []string{"    command: [./api]\n", "    command: [./api]\n    ip: 10.10.0.300\n"}, "services.api.ip", "not an IP"},
		{"pinned ip with prefix", []string{"    command: [./api]\n", "    command: [./api]\n    ip: 10.10.0.3/16\n"}, "services.api.ip", "prefix"},
		{"pinned ip with replicas", []string{"    command: [./api]\n", "    command: [./api]\n    ip: 10.10.0.5\n    replicas: 2\n"}, "services.api.ip", "replicas"},
		{"overlay overlaps network", []string{"cidr: 10.10.0.0/16", "cidr: 192.168.0.0/16"}, "overlay.cidr", "overlaps"},
		{"overlay too small", []string{"cidr: 10.10.0.0/16", "cidr: 10.10.0.0/23"}, "overlay.cidr", "/22"},
		{"negative replicas", []string{"    command: [./api]\n", "    command: [./api]\n    replicas: -1\n"}, "services.api.replicas", "0"},
		{"replicas not a number", []string{"    command: [./api]\n", "    command: [./api]\n    replicas: three\n"}, "services.api.replicas", "number"},
		{"vni missing", []string{"vni: 444, ", ""}, "overlay.vni", "missing"},
		{"vni too large", []string{"vni: 444", "vni: 16777216"}, "overlay.vni", "16777215"},
		{"vni negative", []string{"vni: 444", "vni: -3"}, "overlay.vni", "16777215"},
		{"overlay port", []string{"port: 4789", "port: 70000"}, "overlay.port", "65535"},
		{"service port", []string{"port: 8080", "port: 65536"}, "services.api.port", "65535"},
		{"health tcp port", []string{"tcp: 5432", "tcp: 70000"}, "services.db.health.tcp", "65535"},
		{"health port", []string{"{http: /health}", "{http: /health, port: 0x}"}, "services.api.health.port", "number"},
		{"publish port", []string{"services: [api]}", "services: [api], port: 99999}"}, "publish[0].port", "65535"},
		{"network mtu too small", []string{"mtu: 1500", "mtu: 500"}, "network.mtu", "576"},
		{"network mtu too large", []string{"mtu: 1500", "mtu: 9001"}, "network.mtu", "9000"},
		{"overlay mtu above network - 50", []string{"bridge: br-vxlan", "bridge: br-vxlan, mtu: 1460"}, "overlay.mtu", "1450"},
		{"overlay mtu too small", []string{"bridge: br-vxlan", "bridge: br-vxlan, mtu: 100"}, "overlay.mtu", "576"},
		{"unknown dependency", []string{"depends_on: [db]", "depends_on: [dbb]"}, "services.api.depends_on[0]", "did you mean `db`?"},
		{"self dependency", []string{"depends_on: [db]", "depends_on: [api]"}, "services.api.depends_on[0]", "itself"},
		{"two-service cycle", []string{"    command: [./db]\n", "    command: [./db]\n    depends_on: [api]\n"}, "services.api.depends_on", "api -> db -> api"},
		{"three-service cycle", append([]string{"    command: [./db]\n", "    command: [./db]\n    depends_on: [cache]\n"},
			addService("  cache:\n    command: [./cache]\n    depends_on: [api]\n")...), "services.api.depends_on", "api -> db -> cache -> api"},
		{"unknown host", []string{"    command: [./api]\n", "    command: [./api]\n    host: zeus\n"}, "services.api.host", "host1, host2"},
		{"unknown host in hosts", []string{"    command: [./api]\n", "    command: [./api]\n    hosts: [host1, hots2]\n"}, "services.api.hosts[1]", "did you mean `host2`?"},
		{"host and hosts", []string{"    command: [./api]\n", "    command: [./api]\n    host: host1\n    hosts: [host2]\n"}, "services.api.host", "not both"},
		{"missing command", []string{"    command: [./api]\n", ""}, "services.api.command", "missing"},
		{"command not a list", []string{"command: [./api]", "command: {x: 1}"}, "services.api.command", "list"},
		{"bad restart", []string{"    command: [./api]\n", "    command: [./api]\n    restart: sometimes\n"}, "services.api.restart", "on-failure"},
		{"health without check", []string{"{http: /health}", "{interval: 1s}"}, "services.api.health", "http"},
		{"health with two checks", []string{"{http: /health}", "{http: /health, tcp: 8080}"}, "services.api.health", "exactly one"},
		{"http health without port", []string{"    port: 8080\n", ""}, "services.api.health.port", "port"},
		{"http path without slash", []string{"{http: /health}", "{http: health}"}, "services.api.health.http", "/health"},
		{"bad health interval", []string{"{http: /health}", "{http: /health, interval: 5 seconds}"}, "services.api.health.interval", "500ms"},
		{"negative health interval", []string{"{http: /health}", "{http: /health, interval: -1s}"}, "services.api.health.interval", "positive"},
		{"negative health retries", []string{"{http: /health}", "{http: /health, retries: -1}"}, "services.api.health.retries", "at least 1"},
		{"volume without name", []string{"    command: [./db]\n", "    command: [./db]\n    volumes: [{path: /data}]\n"}, "services.db.volumes[0].name", "missing"},
		{"volume without path", []string{"    command: [./db]\n", "    command: [./db]\n    volumes: [{name: data}]\n"}, "services.db.volumes[0].path", "missing"},
		{"volume relative path", []string{"    command: [./db]\n", "    command: [./db]\n    volumes: [{name: data, path: data}]\n"}, "services.db.volumes[0].path", "absolute"},
		{"volume name with slash", []string{"    command: [./db]\n", "    command: [./db]\n    volumes: [{name: ../x, path: /x}]\n"}, "services.db.volumes[0].name", "directory"},
		{"duplicate volume names", []string{"    command: [./db]\n", "    command: [./db]\n    volumes: [{name: data, path: /a}, {name: data, path: /b}]\n"}, "services.db.volumes[1].name", "same name"},
		{"invalid env key", []string{"    command: [./db]\n", "    command: [./db]\n    env: {1BAD: x, GOOD: y}\n"}, "services.db.env.1BAD", "LOG_LEVEL"},
		{"env key with dash", []string{"    command: [./db]\n", "    command: [./db]\n    env: {MY-VAR: x}\n"}, "services.db.env.MY-VAR", "environment"},
		{"service name uppercase", addService("  Cache:\n    command: [./c]\n"), "services.Cache", "cache"},
		{"service name one letter", addService("  c:\n    command: [./c]\n"), "services.c", "2 to 40"},
		{"service name too long", addService("  " + long41 + ":\n    command: [./c]\n"), "services." + long41, "40"},
		{"service name ends with dash", addService("  cache-:\n    command: [./c]\n"), "services.cache-", "end"},
		{"service named like a container", addService("  api-1:\n    command: [./c]\n"), "services.api-1", "container 1 of service api"},
		{"duplicate service", addService("  api:\n    command: [./c]\n"), "services.api", "twice"},
		{"bridge too long", []string{"bridge: br-vxlan", "bridge: br-vxlan-too-long"}, "overlay.bridge", "15"},
		{"bridge with slash", []string{"bridge: br-vxlan", "bridge: br/x"}, "overlay.bridge", "'/'"},
		{"bridge with colon", []string{"bridge: br-vxlan", "bridge: \"br:x\""}, "overlay.bridge", "':'"},
		{"bridge eth0", []string{"bridge: br-vxlan", "bridge: eth0"}, "overlay.bridge", "already used"},
		{"bridge lo", []string{"bridge: br-vxlan", "bridge: lo"}, "overlay.bridge", "already used"},
		{"domain with leading dash", []string{"domain: weft", "domain: -weft"}, "domain", "DNS label"},
		{"domain with empty label", []string{"domain: weft", "domain: a..b"}, "domain", "DNS label"},
		{"domain uppercase", []string{"domain: weft", "domain: Weft"}, "domain", "DNS label"},
		{"unknown top-level field", []string{"provider: lab", "provider: lab\nservice: {}"}, "service", "did you mean `services`?"},
		{"unknown service field", []string{"    command: [./api]\n", "    command: [./api]\n    replica: 2\n"}, "services.api.replica", "did you mean `replicas`?"},
		{"unknown host field", []string{"{name: host1, subnet: a}", "{name: host1, subnet: a, adress: 192.168.1.20}"}, "hosts[0].adress", "did you mean `address`?"},
		{"unknown health field", []string{"{http: /health}", "{http: /health, intervall: 1s}"}, "services.api.health.intervall", "did you mean `interval`?"},
		{"unknown overlay field", []string{"vni: 444", "vin: 444"}, "overlay.vin", "did you mean `vni`?"},
		{"unknown field far from any", []string{"provider: lab", "provider: lab\nzzzzzzzz: 1"}, "zzzzzzzz", "domain"},
		{"duplicate key", []string{"provider: lab", "provider: lab\nprovider: lab"}, "provider", "twice"},
		{"route prefix without slash", []string{"{prefix: /api, service: api}", "{prefix: api, service: api}"}, "routes[0].prefix", "/api"},
		{"route unknown service", []string{"{prefix: /api, service: api}", "{prefix: /api, service: apx}"}, "routes[0].service", "did you mean `api`?"},
		{"duplicate route prefix", []string{"  - {prefix: /api, service: api}\n", "  - {prefix: /api, service: api}\n  - {prefix: /api, service: db}\n"}, "routes[1].prefix", "routes[0]"},
		{"negative route retries", []string{"{prefix: /api, service: api}", "{prefix: /api, service: api, retries: -1}"}, "routes[0].retries", "0"},
		{"route with service and backends", []string{"{prefix: /api, service: api}", "{prefix: /api, service: api, backends: [{service: db, weight: 1}]}"}, "routes[0].service", "not both"},
		{"route backends all weight 0", []string{"{prefix: /api, service: api}", "{prefix: /api, backends: [{service: api, weight: 0}, {service: db, weight: 0}]}"}, "routes[0].backends", "positive weight"},
		{"route backend weight too big", []string{"{prefix: /api, service: api}", "{prefix: /api, backends: [{service: api, weight: 1001}]}"}, "routes[0].backends[0].weight", "0 sends it nothing"},
		{"route backend unknown", []string{"{prefix: /api, service: api}", "{prefix: /api, backends: [{service: apx, weight: 1}]}"}, "routes[0].backends[0].service", "did you mean `api`?"},
		{"route backend twice", []string{"{prefix: /api, service: api}", "{prefix: /api, backends: [{service: api, weight: 1}, {service: api, weight: 2}]}"}, "routes[0].backends[1].service", "once"},
		{"route match header with a space", []string{"{prefix: /api, service: api}", "{prefix: /api, service: api, match: {header: x canary, value: always, service: db}}"}, "routes[0].match.header", "x-canary"},
		{"route match without value", []string{"{prefix: /api, service: api}", "{prefix: /api, service: api, match: {header: x-canary, service: db}}"}, "routes[0].match.value", "missing"},
		{"route without service or backends", []string{"{prefix: /api, service: api}", "{prefix: /api}"}, "routes[0].service", "backends"},
		{"publish on all addresses", []string{`"127.0.0.1:8080"`, `"0.0.0.0:8080"`}, "publish[0].listen", "loopback"},
		{"publish on a lab address", []string{`"127.0.0.1:8080"`, `"10.10.0.5:8080"`}, "publish[0].listen", "loopback"},
		{"publish without port", []string{`"127.0.0.1:8080"`, `"127.0.0.1"`}, "publish[0].listen", "port"},
		{"publish unknown service", []string{"services: [api]}", "services: [apj]}"}, "publish[0].services[0]", "did you mean `api`?"},
		{"publish without services", []string{", services: [api]}", "}"}, "publish[0].services", "missing"},
		{"gateway metrics port", []string{"routes:\n", "gateway: {metrics_port: 70000}\nroutes:\n"}, "gateway.metrics_port", "65535"},
		{"gateway body limit", []string{"routes:\n", "gateway: {max_body_bytes: -5}\nroutes:\n"}, "gateway.max_body_bytes", "positive"},
		{"workdir relative", []string{"    command: [./api]\n", "    command: [./api]\n    workdir: srv\n"}, "services.api.workdir", "absolute"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems := parseProblems(t, edit(t, base, tc.edits...))
			var found *Problem
			for i, p := range problems {
				if p.Message == "" || p.Fix == "" {
					t.Errorf("problem without message or fix: %+v", p)
				}
				if p.Line == 0 && (parentField(p.Field) != "" || p.Value != "") {
					t.Errorf("problem without a line: %+v", p)
				}
				if p.Field == tc.field && found == nil {
					found = &problems[i]
				}
			}
			if found == nil {
				t.Fatalf("no problem for field %s; got:\n%v", tc.field, problems)
			}
			if !strings.Contains(found.Message+" "+found.Fix, tc.message) {
				t.Errorf("problem %q does not mention %q", found.String(), tc.message)
			}
		})
	}
}

func TestAllowedEdgeCases(t *testing.T) {
	cases := []struct {
		name  string
		edits []string
	}{
		{"replicas zero", []string{"    command: [./api]\n", "    command: [./api]\n    replicas: 0\n"}},
		{"publish on ipv6 loopback", []string{`"127.0.0.1:8080"`, `"[::1]:8080"`}},
		{"publish on 127.0.0.2", []string{`"127.0.0.1:8080"`, `"127.0.0.2:8080"`}},
		{"pinned ip just below the reserved block", []string{"    command: [./api]\n", "    command: [./api]\n    ip: 10.10.254.255\n"}},
		{"ip with one replica spread over hosts", []string{"    command: [./api]\n", "    command: [./api]\n    ip: 10.10.0.5\n    hosts: [host2, host1]\n"}},
		{"anchors and merge keys", []string{"  db:\n    command: [./db]\n", "  db: &db\n    command: [./db]\n    restart: never\n", "routes:\n", "  db2:\n    <<: *db\n    restart: always\nroutes:\n"}},
		{"duration as bare seconds", []string{"{http: /health}", "{http: /health, interval: 2}"}},
		{"dotted domain", []string{"domain: weft", "domain: svc.weft-1.internal"}},
		{"roles worker on one host", []string{"{name: host2, subnet: b}", "{name: host2, subnet: b, roles: [worker]}"}},
		{"weighted route with a header match", []string{"{prefix: /api, service: api}", "{prefix: /api, backends: [{service: api, weight: 90}, {service: db, weight: 10}], match: {header: x-canary, value: always, service: db}}"}},
		{"weighted route with one backend at 0", []string{"{prefix: /api, service: api}", "{prefix: /api, backends: [{service: api, weight: 100}, {service: db, weight: 0}]}"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(edit(t, base, tc.edits...)), "/srv/lab"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTooManyHosts(t *testing.T) {
	var hosts strings.Builder
	for i := range MaxHosts + 1 {
		fmt.Fprintf(&hosts, "  - {name: h%d, subnet: a, address: 192.168.%d.%d}\n", i, 1+i/200, 10+i%200)
	}
	text := edit(t, base, "  - {name: host1, subnet: a}\n  - {name: host2, subnet: b}\n", hosts.String(),
		"a: 192.168.1.0/24, b: 192.168.2.0/24", "a: 192.168.0.0/22")
	problems := parseProblems(t, text)
	if !problems.Has("hosts") || len(problems) != 1 {
		t.Fatalf("want exactly one problem on hosts, got:\n%v", problems)
	}
}

func TestSeveralProblemsReportedAtOnce(t *testing.T) {
	text := edit(t, base,
		"version: 1", "version: 3",
		"cidr: 10.10.0.0/16", "cidr: 10.10.0.0/30",
		"{name: host2, subnet: b}", "{name: host2, subnet: q}",
		"depends_on: [db]", "depends_on: [dx]",
		"    command: [./db]\n", "    comand: [./db]\n")
	problems := parseProblems(t, text)
	for _, field := range []string{"version", "overlay.cidr", "hosts[1].subnet", "services.api.depends_on[0]", "services.db.comand", "services.db.command"} {
		if !problems.Has(field) {
			t.Errorf("missing problem on %s", field)
		}
	}
	lines := strings.Split(problems.Error(), "\n")
	if len(lines) != len(problems) {
		t.Errorf("Error() has %d lines for %d problems", len(lines), len(problems))
	}
	for i := 1; i < len(problems); i++ {
		if problems[i].Line < problems[i-1].Line {
			t.Errorf("problems not in file order: %v before %v", problems[i-1], problems[i])
		}
	}
}

func TestUndecodableValueReportedOnce(t *testing.T) {
	problems := parseProblems(t, edit(t, base, "cidr: 192.168.0.0/16", "cidr: nonsense"))
	if len(problems) != 1 || problems[0].Field != "network.cidr" {
		t.Fatalf("want one problem on network.cidr, got:\n%v", problems)
	}
}

func TestPositions(t *testing.T) {
	cases := []struct {
		name         string
		text         string
		field        string
		line, column int
	}{
		{"unknown field", "version: 1\nname: x1\nservices:\n  web:\n    command: [x]\n    replica: 3\n", "services.web.replica", 6, 5},
		{"unknown field in flow mapping", "version: 1\nhosts:\n  - {name: h1, subnet: a, adress: 1.2.3.4}\n", "hosts[0].adress", 3, 27},
		{"validation problem at its key", base, "services.api.ip", 16, 5},
		{"syntax: unclosed bracket", "version: 1\nname: x1\nhosts: [a, b\nservices: {}\n", "(yaml)", 3, 1},
		{"syntax: tab indentation", "version: 1\nnetwork:\n\tcidr: 10.0.0.0/8\n", "(yaml)", 3, 1},
		{"syntax: bad indentation", "network:\n  cidr: 10.0.0.0/8\n mtu: 1500\n", "(yaml)", 3, 2},
		{"syntax: mapping in a value", "version: 1\nname: a: b\n", "(yaml)", 2, 1},
		{"syntax: unterminated quote", "version: 1\nname: \"x1\nprovider: lab\n", "(yaml)", 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.text
			if tc.field == "services.api.ip" {
				text = edit(t, base, "    command: [./api]\n", "    command: [./api]\n    ip: 10.20.0.5\n")
			}
			problems := parseProblems(t, text)
			for _, p := range problems {
				if p.Field == tc.field {
					if p.Line != tc.line || p.Column != tc.column {
						t.Errorf("%s at %d:%d, want %d:%d (%s)", p.Field, p.Line, p.Column, tc.line, tc.column, p)
					}
					return
				}
			}
			t.Fatalf("no problem on %s:\n%v", tc.field, problems)
		})
	}
}

func TestErrorFormat(t *testing.T) {
	p := Problems{{Field: "services.web.ip", Value: "10.20.0.5", Message: "outside the overlay cidr 10.10.0.0/16",
		Fix: "pick an address inside 10.10.0.0/16 or leave ip out to allocate one", Line: 12, Column: 5, File: "weft.yaml"}}
	want := "weft.yaml:12:5: services.web.ip = 10.20.0.5: outside the overlay cidr 10.10.0.0/16; fix: pick an address inside 10.10.0.0/16 or leave ip out to allocate one"
	if got := p.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "nope.yaml"))
		problems, ok := err.(Problems)
		if !ok || len(problems) != 1 || problems[0].Field != "-f" || !strings.Contains(problems[0].Fix, "-f FILE") {
			t.Fatalf("got %#v", err)
		}
	})
	t.Run("problems carry the file name", func(t *testing.T) {
		path := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(path, []byte(edit(t, base, "version: 1", "version: 2")), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+":1:1: version = 2") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("relative command resolves against the file's directory", func(t *testing.T) {
		path := filepath.Join(dir, "sub", "weft.yaml")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(base), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		api, _ := c.ServiceByName("api")
		if want := filepath.Join(dir, "sub", "api"); api.Command[0] != want || c.Dir != filepath.Join(dir, "sub") {
			t.Errorf("command[0] = %s dir %s, want %s", api.Command[0], c.Dir, want)
		}
	})
}

func TestExampleParsesClean(t *testing.T) {
	c, err := Load("testdata/hello.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.serviceNames(); !reflect.DeepEqual(got, []string{"api", "store", "web"}) {
		t.Errorf("services in order %v", got)
	}
	if got := c.subnetNames(); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("subnets in order %v", got)
	}
	abs, _ := filepath.Abs("testdata/../../bin/hello")
	api, _ := c.ServiceByName("api")
	if api.Command[0] != abs {
		t.Errorf("api command[0] = %s, want %s", api.Command[0], abs)
	}
	if api.Health.Interval.Duration != 500*time.Millisecond || api.Health.Port != 8080 {
		t.Errorf("api health %+v", *api.Health)
	}
	if n := c.ContainerCount(); n != 5 {
		t.Errorf("ContainerCount = %d, want 5", n)
	}
}

func TestDefaults(t *testing.T) {
	text := edit(t, base,
		"  mtu: 1500\n", "  mtu: 9000\n",
		", port: 4789, bridge: br-vxlan", "",
		"domain: weft\n", "",
		"provider: lab\n", "",
		"version: 1\n", "",
		"  - {name: host2, subnet: b}\n", "  - {name: host2, subnet: a}\n  - {name: host3, subnet: a, address: 192.168.1.11}\n  - {name: host4, subnet: b}\n  - {name: host5, subnet: a}\n",
		"    port: 8080\n", "    port: 8080\n    command: [weft, gateway]\n",
		"    command: [./api]\n", "",
		"    depends_on: [db]\n", "    depends_on: [db]\n    replicas: 3\n",
		"{prefix: /api, service: api}", "{prefix: /api, service: api}\n  - {prefix: /db, service: db, retries: 0, timeout: 3s}",
	)
	c, err := Parse([]byte(text), "/srv/lab")
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 1 || c.Provider != "lab" || c.Domain != "weft" {
		t.Errorf("version/provider/domain = %d %s %s", c.Version, c.Provider, c.Domain)
	}
	if c.Overlay.Port != 4789 || c.Overlay.Bridge != "br-vxlan" || c.Overlay.MTU != 8950 || c.Network.MTU != 9000 {
		t.Errorf("overlay %+v network mtu %d", c.Overlay, c.Network.MTU)
	}
	wantAddrs := map[string]string{"host1": "192.168.1.10", "host2": "192.168.1.12", "host3": "192.168.1.11", "host4": "192.168.2.10", "host5": "192.168.1.13"}
	for name, want := range wantAddrs {
		h, _ := c.HostByName(name)
		if h.Address.String() != want {
			t.Errorf("%s address %s, want %s", name, h.Address, want)
		}
	}
	var managers []string
	for _, h := range c.Managers() {
		managers = append(managers, h.Name)
	}
	if !reflect.DeepEqual(managers, []string{"host1", "host2", "host3"}) {
		t.Errorf("managers %v", managers)
	}
	api, _ := c.ServiceByName("api")
	db, _ := c.ServiceByName("db")
	if !reflect.DeepEqual(api.Command, []string{"weft", "gateway"}) {
		t.Errorf("weft command changed: %v", api.Command)
	}
	if db.Command[0] != "/srv/lab/db" {
		t.Errorf("db command[0] = %s", db.Command[0])
	}
	if api.Replicas != 3 || db.Replicas != 1 || api.Restart != "always" {
		t.Errorf("replicas %d %d restart %s", api.Replicas, db.Replicas, api.Restart)
	}
	h := api.Health
	if h.Interval.Duration != time.Second || h.Timeout.Duration != time.Second || h.Retries != 3 || h.Port != 8080 {
		t.Errorf("health defaults %+v", *h)
	}
	if r := c.Routes[0]; r.Timeout.Duration != 10*time.Second || r.Retries != 2 {
		t.Errorf("route defaults %+v", r)
	}
	if r := c.Routes[1]; r.Timeout.Duration != 3*time.Second || r.Retries != 0 {
		t.Errorf("route with explicit values %+v", r)
	}
	if c.Gateway.MaxBodyBytes != 1048576 || c.Gateway.MetricsPort != 9100 {
		t.Errorf("gateway defaults %+v", c.Gateway)
	}
	if c.Publish[0].Port != 8080 {
		t.Errorf("publish port %d, want the service's 8080", c.Publish[0].Port)
	}
	before, _ := json.Marshal(c)
	c.ApplyDefaults()
	after, _ := json.Marshal(c)
	if string(before) != string(after) {
		t.Errorf("ApplyDefaults is not idempotent:\n%s\n%s", before, after)
	}
}

func TestDefaultManagersSkipWorkers(t *testing.T) {
	c := &Cluster{Hosts: []Host{{Name: "h1", Roles: []string{RoleWorker}}, {Name: "h2"}, {Name: "h3"}, {Name: "h4"}, {Name: "h5"}}}
	c.ApplyDefaults()
	var managers []string
	for _, h := range c.Managers() {
		managers = append(managers, h.Name)
	}
	if !reflect.DeepEqual(managers, []string{"h2", "h3", "h4"}) {
		t.Errorf("managers %v", managers)
	}
	c = &Cluster{Hosts: []Host{{Name: "h1"}, {Name: "h2", Roles: []string{RoleManager}}}}
	c.ApplyDefaults()
	if m := c.Managers(); len(m) != 1 || m[0].Name != "h2" {
		t.Errorf("explicit manager overridden: %v", m)
	}
}

func TestHelpers(t *testing.T) {
	c, err := Load("testdata/hello.yaml")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr
	if got := c.RouterAddr("b"); got != addr("192.168.2.1") {
		t.Errorf("RouterAddr(b) = %s", got)
	}
	if got := c.RouterAddr("nope"); got.IsValid() {
		t.Errorf("RouterAddr(nope) = %s", got)
	}
	for name, want := range map[string]string{"host1": "10.10.255.1", "host2": "10.10.255.2", "host3": "10.10.255.3"} {
		if got := c.HostOverlayAddr(name); got != addr(want) {
			t.Errorf("HostOverlayAddr(%s) = %s, want %s", name, got, want)
		}
	}
	if c.HostOverlayAddr("nope").IsValid() {
		t.Error("HostOverlayAddr of an unknown host is valid")
	}
	for ip, want := range map[string]bool{
		"10.10.0.0": true, "10.10.0.1": false, "10.10.254.255": false, "10.10.255.0": true,
		"10.10.255.1": true, "10.10.255.255": true, "10.11.0.0": false,
	} {
		if got := c.IsReserved(addr(ip)); got != want {
			t.Errorf("IsReserved(%s) = %v, want %v", ip, got, want)
		}
	}
	if _, ok := c.HostByName("host2"); !ok {
		t.Error("HostByName(host2) not found")
	}
	if _, ok := c.SubnetByName("c"); !ok {
		t.Error("SubnetByName(c) not found")
	}
	if _, ok := c.ServiceByName("nope"); ok {
		t.Error("ServiceByName(nope) found")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	text := edit(t, base,
		"    command: [./db]\n", "    command: [./db]\n    env: {A: \"1\"}\n    volumes: [{name: data, path: /data}]\n    hosts: [host1, host2]\n    restart: on-failure\n",
		"{http: /health}", "{http: /health, start_period: 1500ms}")
	for name, text := range map[string]string{"example": mustRead(t, "testdata/hello.yaml"), "full": text} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(text), "/srv/lab")
			if err != nil {
				t.Fatal(err)
			}
			data, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var back Cluster
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*c, back) {
				t.Errorf("round trip differs:\n%+v\n%+v", *c, back)
			}
			if problems := back.Validate(); len(problems) > 0 {
				t.Errorf("read-back cluster does not validate: %v", problems)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{`"500ms"`: 500 * time.Millisecond, `"2s"`: 2 * time.Second, `3`: 3 * time.Second, `"4"`: 4 * time.Second, `0.5`: 500 * time.Millisecond} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.Duration != want {
			t.Errorf("json %s -> %v, %v; want %v", in, d.Duration, err, want)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error(`"soon" parsed as a duration`)
	}
	out, _ := json.Marshal(Duration{1500 * time.Millisecond})
	if string(out) != `"1.5s"` {
		t.Errorf("marshal = %s", out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestTopLevelExtensionKeysHoldAnchors(t *testing.T) {
	src := `version: 1
name: ext
network: {cidr: 192.168.0.0/16, subnets: {a: 192.168.1.0/24}}
overlay: {vni: 7}
hosts: [{name: h1, subnet: a}]
x-common: &common {command: [/bin/true], port: 80}
services:
  one: {<<: *common}
`
	c, err := Parse([]byte(src), "/tmp")
	if err != nil {
		t.Fatalf("x- keys should be ignored: %v", err)
	}
	if s, _ := c.ServiceByName("one"); s.Port != 80 {
		t.Fatalf("anchor not merged: %+v", s)
	}
	if _, err := Parse([]byte(strings.Replace(src, "x-common", "y-common", 1)), "/tmp"); err == nil {
		t.Fatalf("other unknown top-level keys must still be refused")
	}
}
