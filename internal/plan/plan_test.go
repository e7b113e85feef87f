package plan

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

const example = `version: 1
name: hello
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24, c: 192.168.3.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a}
  - {name: host2, subnet: b}
  - {name: host3, subnet: c}
services:
  api:
    command: [./hello]
    host: host1
    ip: 10.10.0.5
    port: 8080
    depends_on: [store]
  store:
    command: [./hello]
    host: host3
    ip: 10.10.0.9
    port: 8080
  web:
    command: [./hello]
    replicas: 3
    port: 8080
`

func parse(t *testing.T, text string) *spec.Cluster {
	t.Helper()
	c, err := spec.Parse([]byte(text), "/srv")
	if err != nil {
		t.Fatalf("parsing test cluster: %v", err)
	}
	return c
}

// edited applies old/new replacements to the example, failing if one does not apply.
func edited(t *testing.T, pairs ...string) *spec.Cluster {
	t.Helper()
	text := example
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("%q not in the example", pairs[i])
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	return parse(t, text)
}

func place(t *testing.T, c *spec.Cluster, prev map[string]model.Assignment) map[string]model.Assignment {
	t.Helper()
	next, err := Place(c, prev)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func hostsAndIPs(a map[string]model.Assignment) map[string]string {
	out := map[string]string{}
	for name, x := range a {
		out[name] = x.Host + " " + x.IP.String()
	}
	return out
}

func TestPlaceExample(t *testing.T) {
	got := hostsAndIPs(place(t, parse(t, example), nil))
	want := map[string]string{
		"api-1":   "host1 10.10.0.5",
		"store-1": "host3 10.10.0.9",
		"web-1":   "host2 10.10.0.1", // host2 is empty; lowest free address
		"web-2":   "host1 10.10.0.2", // all have one: first in file order
		"web-3":   "host2 10.10.0.3",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("placement\n got %v\nwant %v", got, want)
	}
}

func TestAssignmentFields(t *testing.T) {
	for name, a := range place(t, parse(t, example), nil) {
		if a.Container != name || a.Container != naming.ContainerName(a.Service, a.Index) {
			t.Errorf("%s: container %s service %s index %d", name, a.Container, a.Service, a.Index)
		}
		if a.MAC != naming.MACFromIP(a.IP).String() {
			t.Errorf("%s: mac %s for %s", name, a.MAC, a.IP)
		}
	}
}

func TestDeterministic(t *testing.T) {
	c := parse(t, example)
	first := place(t, c, nil)
	for range 20 {
		if again := place(t, c, nil); !reflect.DeepEqual(first, again) {
			t.Fatalf("two placements differ:\n%v\n%v", first, again)
		}
	}
}

func TestStableOnReapply(t *testing.T) {
	c := parse(t, example)
	first := place(t, c, nil)
	again := place(t, c, first)
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("re-apply changed assignments:\n%v\n%v", first, again)
	}
	if ch := Diff(first, again); ch.Count() != 0 {
		t.Errorf("Diff of a re-apply = %+v", ch)
	}
}

func TestGrowingKeepsOldAssignments(t *testing.T) {
	first := place(t, parse(t, example), nil)
	c := parse(t, strings.Replace(example, "replicas: 3", "replicas: 5", 1)+"  cache:\n    command: [./cache]\n    replicas: 2\n")
	next := place(t, c, first)
	for name, old := range first {
		if next[name] != old {
			t.Errorf("%s changed from %+v to %+v", name, old, next[name])
		}
	}
	ch := Diff(first, next)
	if want := []string{"cache-1", "cache-2", "web-4", "web-5"}; !reflect.DeepEqual(ch.Added, want) || len(ch.Moved)+len(ch.Removed) != 0 {
		t.Errorf("Diff = %+v, want only %v added", ch, want)
	}
	assertUniqueAddresses(t, c, next)
}

func TestPinnedReservedFirst(t *testing.T) {
	// aa comes first in the file and would take 10.10.0.1 if bb's pin were not reserved first.
	c := parse(t, strings.Replace(example, "  api:\n", "  aa:\n    command: [./a]\n  bb:\n    command: [./b]\n    ip: 10.10.0.1\n  api:\n", 1))
	got := place(t, c, nil)
	if got["bb-1"].IP != netip.MustParseAddr("10.10.0.1") {
		t.Errorf("bb-1 = %s, want its pinned 10.10.0.1", got["bb-1"].IP)
	}
	if got["aa-1"].IP != netip.MustParseAddr("10.10.0.2") {
		t.Errorf("aa-1 = %s, want 10.10.0.2 (first free after the pin)", got["aa-1"].IP)
	}
	assertUniqueAddresses(t, c, got)
}

func TestNewPinTakesAddressFromUnpinnedContainer(t *testing.T) {
	first := place(t, parse(t, example), nil) // web-1 holds 10.10.0.1
	c := edited(t, "ip: 10.10.0.9", "ip: 10.10.0.1")
	next := place(t, c, first)
	if next["store-1"].IP != netip.MustParseAddr("10.10.0.1") {
		t.Errorf("store-1 = %s, want its new pin 10.10.0.1", next["store-1"].IP)
	}
	ch := Diff(first, next)
	if want := []string{"store-1", "web-1"}; !reflect.DeepEqual(ch.Moved, want) || len(ch.Added)+len(ch.Removed) != 0 {
		t.Errorf("Diff = %+v, want %v moved", ch, want)
	}
	assertUniqueAddresses(t, c, next)
}

func TestRemoval(t *testing.T) {
	first := place(t, parse(t, example), nil)
	c := edited(t, "replicas: 3", "replicas: 1",
		"  api:\n    command: [./hello]\n    host: host1\n    ip: 10.10.0.5\n    port: 8080\n    depends_on: [store]\n", "")
	next := place(t, c, first)
	ch := Diff(first, next)
	if want := []string{"api-1", "web-2", "web-3"}; !reflect.DeepEqual(ch.Removed, want) || len(ch.Added)+len(ch.Moved) != 0 {
		t.Errorf("Diff = %+v, want %v removed", ch, want)
	}
	for name, a := range next {
		if first[name] != a {
			t.Errorf("%s changed: %+v -> %+v", name, first[name], a)
		}
	}
	zero := edited(t, "replicas: 3", "replicas: 0")
	if _, ok := place(t, zero, first)["web-1"]; ok {
		t.Error("web scaled to zero still has web-1")
	}
}

func TestMovingServiceChangesOnlyItsContainers(t *testing.T) {
	first := place(t, parse(t, example), nil)
	c := edited(t, "host: host1", "host: host2")
	next := place(t, c, first)
	ch := Diff(first, next)
	if !reflect.DeepEqual(ch.Moved, []string{"api-1"}) || len(ch.Added)+len(ch.Removed) != 0 {
		t.Fatalf("Diff = %+v, want only api-1 moved", ch)
	}
	if next["api-1"].Host != "host2" || next["api-1"].IP != first["api-1"].IP {
		t.Errorf("api-1 = %+v, want host2 with its address kept", next["api-1"])
	}

	// An unpinned service moved with `host` keeps its addresses too.
	spread := edited(t, "    replicas: 3\n", "    replicas: 3\n    host: host3\n")
	moved := place(t, spread, first)
	for _, name := range []string{"web-1", "web-2", "web-3"} {
		if moved[name].Host != "host3" || moved[name].IP != first[name].IP {
			t.Errorf("%s = %+v, want host3 at %s", name, moved[name], first[name].IP)
		}
	}
	if ch := Diff(first, moved); !reflect.DeepEqual(ch.Moved, []string{"web-1", "web-2", "web-3"}) || len(ch.Added)+len(ch.Removed) != 0 {
		t.Errorf("Diff = %+v, want the three web containers moved", ch)
	}
}

func TestPinnedAddressChangeMoves(t *testing.T) {
	first := place(t, parse(t, example), nil)
	next := place(t, edited(t, "ip: 10.10.0.5", "ip: 10.10.0.50"), first)
	ch := Diff(first, next)
	if !reflect.DeepEqual(ch.Moved, []string{"api-1"}) || len(ch.Added)+len(ch.Removed) != 0 {
		t.Fatalf("Diff = %+v, want only api-1 moved", ch)
	}
	if next["api-1"].IP != netip.MustParseAddr("10.10.0.50") {
		t.Errorf("api-1 at %s", next["api-1"].IP)
	}
}

func TestHostsRoundRobin(t *testing.T) {
	c := edited(t, "    replicas: 3\n", "    replicas: 5\n    hosts: [host3, host1]\n")
	got := place(t, c, nil)
	want := []string{"host3", "host1", "host3", "host1", "host3"}
	for i, host := range want {
		name := fmt.Sprintf("web-%d", i+1)
		if got[name].Host != host {
			t.Errorf("%s on %s, want %s", name, got[name].Host, host)
		}
	}

	// Previous hosts are kept while still listed; a container on a host
	// no longer listed moves to its round-robin host.
	prev := maps.Clone(got)
	swap := prev["web-1"]
	swap.Host = "host1" // listed, though not web-1's round-robin slot
	prev["web-1"] = swap
	narrowed := edited(t, "    replicas: 3\n", "    replicas: 5\n    hosts: [host1, host2]\n")
	next := place(t, narrowed, prev)
	if next["web-1"].Host != "host1" || next["web-1"].IP != prev["web-1"].IP {
		t.Errorf("web-1 = %+v, want kept on host1", next["web-1"])
	}
	if next["web-2"] != prev["web-2"] || next["web-4"] != prev["web-4"] {
		t.Errorf("containers on host1 changed: %+v %+v", next["web-2"], next["web-4"])
	}
	for name, host := range map[string]string{"web-3": "host1", "web-5": "host1"} {
		if next[name].Host != host || next[name].IP != prev[name].IP {
			t.Errorf("%s = %+v, want moved to %s keeping %s", name, next[name], host, prev[name].IP)
		}
	}
}

func TestExhaustion(t *testing.T) {
	// A /22 has 1024 addresses: minus the network address and the reserved
	// last 256, 767 are left for containers; api and store pin two of them.
	fits := edited(t, "cidr: 10.10.0.0/16", "cidr: 10.10.0.0/22", "replicas: 3", "replicas: 765")
	placed := place(t, fits, nil)
	if len(placed) != 767 {
		t.Fatalf("%d containers placed, want 767", len(placed))
	}
	assertUniqueAddresses(t, fits, placed)
	// Validation refuses a file that asks for more (spec.validateCapacity);
	// Place still refuses a cluster that skipped it.
	tooMany := *fits
	tooMany.Services = slices.Clone(fits.Services)
	for i := range tooMany.Services {
		if tooMany.Services[i].Name == "web" {
			tooMany.Services[i].Replicas = 766
		}
	}
	_, err := Place(&tooMany, nil)
	if err == nil || !strings.Contains(err.Error(), "service web") || !strings.Contains(err.Error(), "10.10.0.0/22") {
		t.Fatalf("err = %v, want an exhaustion error naming service web and the cidr", err)
	}
}

func TestFiftyHostsSpreadEvenly(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nname: big\nnetwork: {cidr: 192.168.0.0/16, subnets: {a: 192.168.1.0/24}}\noverlay: {vni: 1}\nhosts:\n")
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&b, "  - {name: h%d, subnet: a}\n", i)
	}
	b.WriteString("services:\n")
	for _, s := range []struct {
		name     string
		replicas int
	}{{"web", 90}, {"api", 70}, {"db", 39}, {"one", 1}} {
		fmt.Fprintf(&b, "  %s: {command: [./x], replicas: %d}\n", s.name, s.replicas)
	}
	c := parse(t, b.String())
	placed := place(t, c, nil)
	perHost := map[string]int{}
	for _, a := range placed {
		perHost[a.Host]++
	}
	for _, h := range c.Hosts {
		if perHost[h.Name] != 4 {
			t.Errorf("%s has %d containers, want 4", h.Name, perHost[h.Name])
		}
	}
	assertUniqueAddresses(t, c, placed)
}

func TestDiff(t *testing.T) {
	ip := netip.MustParseAddr
	prev := map[string]model.Assignment{
		"a-1": {Host: "h1", IP: ip("10.10.0.1")},
		"b-1": {Host: "h1", IP: ip("10.10.0.2")},
		"c-1": {Host: "h1", IP: ip("10.10.0.3")},
		"d-1": {Host: "h1", IP: ip("10.10.0.4")},
	}
	next := map[string]model.Assignment{
		"a-1": {Host: "h1", IP: ip("10.10.0.1")},
		"b-1": {Host: "h2", IP: ip("10.10.0.2")},
		"c-1": {Host: "h1", IP: ip("10.10.0.9")},
		"z-1": {Host: "h1", IP: ip("10.10.0.5")},
		"e-1": {Host: "h1", IP: ip("10.10.0.6")},
	}
	want := model.Changes{Added: []string{"e-1", "z-1"}, Removed: []string{"d-1"}, Moved: []string{"b-1", "c-1"}}
	if got := Diff(prev, next); !reflect.DeepEqual(got, want) {
		t.Errorf("Diff = %+v, want %+v", got, want)
	}
}

func TestStartOrder(t *testing.T) {
	if got, want := StartOrder(parse(t, example)), [][]string{{"store", "web"}, {"api"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("StartOrder = %v, want %v", got, want)
	}
	chain := parse(t, strings.Replace(example, "    replicas: 3\n", "    replicas: 3\n    depends_on: [api, store]\n", 1))
	if got, want := StartOrder(chain), [][]string{{"store"}, {"api"}, {"web"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("StartOrder = %v, want %v", got, want)
	}
	cyclic := &spec.Cluster{Services: []spec.Service{{Name: "x", DependsOn: []string{"y"}}, {Name: "y", DependsOn: []string{"x"}}, {Name: "z"}}}
	if got, want := StartOrder(cyclic), [][]string{{"z"}, {"x", "y"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("StartOrder of a cycle = %v, want %v", got, want)
	}
}

func assertUniqueAddresses(t *testing.T, c *spec.Cluster, placed map[string]model.Assignment) {
	t.Helper()
	seen := map[netip.Addr]string{}
	for name, a := range placed {
		if other, dup := seen[a.IP]; dup {
			t.Errorf("%s and %s share %s", name, other, a.IP)
		}
		seen[a.IP] = name
		if !c.Overlay.CIDR.Contains(a.IP) || c.IsReserved(a.IP) {
			t.Errorf("%s got unusable address %s", name, a.IP)
		}
	}
}
