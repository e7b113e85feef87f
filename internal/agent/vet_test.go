package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/plan"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

const vetFile = `version: 1
name: tls-vet
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a}
  - {name: host2, subnet: b}
services:
  web:
    command: [./hello]
    replicas: 2
    port: 8080
`

func vetSpec(t *testing.T, edit func(c *spec.Cluster)) *spec.Cluster {
	t.Helper()
	c, err := spec.Parse([]byte(vetFile), "/srv")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// countingHandler counts the warnings a vetter logs.
type countingHandler struct{ n *int }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(context.Context, slog.Record) error {
	*h.n++
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestVetter: table of store reads -> what an agent acts on and what it
// reports. Each case runs twice: a vetter that keeps the last valid values
// (host agents, resolver) after a first good read, and one that does not
// (leader, status).
func TestVetter(t *testing.T) {
	good := vetSpec(t, nil)
	assign, err := plan.Place(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	web1 := assign["web-1"]
	v6 := web1
	v6.IP = netip.MustParseAddr("fd00::1")
	moved := web1
	moved.Host = "host9"
	with := func(name string, a model.Assignment) map[string]model.Assignment {
		out := map[string]model.Assignment{"web-2": assign["web-2"]}
		out[name] = a
		return out
	}
	without1 := map[string]model.Assignment{"web-2": assign["web-2"]}
	bad := func(kind, name string) []store.BadValue {
		return []store.BadValue{{Key: "/weft/tls-vet/" + kind + "/" + name, Kind: kind, Name: name, Err: "invalid character"}}
	}
	cases := []struct {
		name     string
		read     store.Snapshot
		refused  []string                    // prefixes of the refusals, sorted
		fresh    *spec.Cluster               // spec acted on without keep
		freshA   map[string]model.Assignment // assignments acted on without keep
		keptSpec *spec.Cluster               // with keep, after a good read
		keptA    map[string]model.Assignment
	}{
		{name: "all valid", read: store.Snapshot{Spec: good, Assign: assign},
			fresh: good, freshA: assign, keptSpec: good, keptA: assign},
		{name: "no spec yet", read: store.Snapshot{},
			fresh: nil, freshA: map[string]model.Assignment{}, keptSpec: nil, keptA: map[string]model.Assignment{}},
		{name: "the file of another cluster", read: store.Snapshot{Spec: vetSpec(t, func(c *spec.Cluster) { c.Name = "other" }), Assign: assign},
			refused: []string{"spec: it is the file of cluster \"other\""},
			fresh:   nil, freshA: assign, keptSpec: good, keptA: assign},
		{name: "a spec that does not validate", read: store.Snapshot{Spec: vetSpec(t, func(c *spec.Cluster) { c.Services[0].Command = nil }), Assign: assign},
			refused: []string{"spec: it does not validate"},
			fresh:   nil, freshA: assign, keptSpec: good, keptA: assign},
		{name: "an undecodable spec", read: store.Snapshot{Assign: assign, Bad: []store.BadValue{{Key: "/weft/tls-vet/spec", Kind: "spec", Err: "eof"}}},
			refused: []string{"spec: does not decode"},
			fresh:   nil, freshA: assign, keptSpec: good, keptA: assign},
		{name: "an IPv6 assignment", read: store.Snapshot{Spec: good, Assign: with("web-1", v6)},
			refused: []string{"assign/web-1: assignment web-1 refused"},
			fresh:   good, freshA: without1, keptSpec: good, keptA: assign},
		{name: "an assignment to an unknown host", read: store.Snapshot{Spec: good, Assign: with("web-1", moved)},
			refused: []string{"assign/web-1: assignment web-1 refused: host \"host9\""},
			fresh:   good, freshA: without1, keptSpec: good, keptA: assign},
		{name: "an undecodable assignment", read: store.Snapshot{Spec: good, Assign: without1, Bad: bad("assign", "web-1")},
			refused: []string{"assign/web-1: does not decode"},
			fresh:   good, freshA: without1, keptSpec: good, keptA: assign},
		{name: "an undecodable assignment never seen valid", read: store.Snapshot{Spec: good, Assign: assign, Bad: bad("assign", "web-9")},
			refused: []string{"assign/web-9: does not decode"},
			fresh:   good, freshA: assign, keptSpec: good, keptA: assign},
		{name: "an undecodable status is reported only", read: store.Snapshot{Spec: good, Assign: assign, Bad: bad("status", "web-1")},
			refused: []string{"status/web-1: does not decode"},
			fresh:   good, freshA: assign, keptSpec: good, keptA: assign},
		{name: "a refused spec and an assignment it would allow", read: store.Snapshot{Spec: vetSpec(t, func(c *spec.Cluster) { c.Name = "other" }), Assign: with("web-1", v6)},
			refused: []string{"assign/web-1:", "spec: it is the file of cluster"},
			fresh:   nil, freshA: without1, keptSpec: good, keptA: assign},
	}
	check := func(t *testing.T, got store.Snapshot, refused []string, wantSpec *spec.Cluster, wantA map[string]model.Assignment, wantRefused []string) {
		t.Helper()
		if got.Spec != wantSpec {
			t.Errorf("spec acted on: %v, want %v", specName(got.Spec), specName(wantSpec))
		}
		if !reflect.DeepEqual(got.Assign, wantA) {
			t.Errorf("assignments acted on: %v, want %v", got.Assign, wantA)
		}
		if len(refused) != len(wantRefused) {
			t.Fatalf("refused %q, want %d like %q", refused, len(wantRefused), wantRefused)
		}
		for i := range refused {
			if !strings.HasPrefix(refused[i], wantRefused[i]) {
				t.Errorf("refusal %q, want it to start with %q", refused[i], wantRefused[i])
			}
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, refused := (&vetter{cluster: "tls-vet"}).vetSnapshot(tc.read)
			check(t, got, refused, tc.fresh, tc.freshA, tc.refused)

			logged := 0
			keep := &vetter{cluster: "tls-vet", keep: true, log: slog.New(countingHandler{&logged})}
			keep.vetSnapshot(store.Snapshot{Spec: good, Assign: assign})
			got, refused = keep.vetSnapshot(tc.read)
			check(t, got, refused, tc.keptSpec, tc.keptA, tc.refused)
			keep.vetSnapshot(tc.read)
			if logged != len(tc.refused) {
				t.Errorf("logged %d warnings over two equal reads, want each refusal once (%d)", logged, len(tc.refused))
			}
		})
	}
}

func specName(c *spec.Cluster) string {
	if c == nil {
		return "none"
	}
	return c.Name
}
