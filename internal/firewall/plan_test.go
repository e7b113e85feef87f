package firewall

import (
	"net/netip"
	"slices"
	"testing"
)

func states(tables []Table, counts map[string]Count) []State {
	var out []State
	for _, t := range tables {
		out = append(out, State{Shape: t.Shape(), Counters: counts})
	}
	return out
}

func opStrings(ops []Op) []string {
	var out []string
	for _, o := range ops {
		out = append(out, o.String())
	}
	return out
}

func TestPlan(t *testing.T) {
	base := sampleConfig()
	joined := sampleConfig()
	joined.Members = append(joined.Members, netip.MustParseAddr("192.168.4.10"))
	moved := sampleConfig()
	moved.Containers = moved.Containers[:1]
	bridgeOnly := func() []State { return states(Build(base)[1:], nil) }
	handEdited := states(Build(base), nil)
	handEdited[0].Shape.Chains[0].Rules = handEdited[0].Shape.Chains[0].Rules[1:]

	for _, tc := range []struct {
		name string
		want Config
		have []State
		ops  []string
	}{
		{"nothing yet", base, nil, []string{"write inet weft-fw", "write bridge weft-fw"}},
		{"already there", base, states(Build(base), nil), nil},
		{"a host joins: only the inet table changes", joined, states(Build(base), nil), []string{"write inet weft-fw"}},
		{"a container leaves: only the bridge table changes", moved, states(Build(base), nil), []string{"write bridge weft-fw"}},
		{"one table missing", base, bridgeOnly(), []string{"write inet weft-fw"}},
		{"a rule deleted by hand is put back", base, handEdited, []string{"write inet weft-fw"}},
		{"off removes both", Config{}, states(Build(base), nil), []string{"delete inet weft-fw", "delete bridge weft-fw"}},
		{"off with nothing there", Config{}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := opStrings(Plan(Build(tc.want), tc.have))
			if !slices.Equal(got, tc.ops) {
				t.Errorf("ops = %q, want %q", got, tc.ops)
			}
		})
	}
}

func TestPlanCarriesCounters(t *testing.T) {
	base := sampleConfig()
	joined := sampleConfig()
	joined.Members = joined.Members[:2]
	have := states(Build(base), map[string]Count{CounterVXLAN: {Packets: 7, Bytes: 700}, "gone": {Packets: 1}})
	ops := Plan(Build(joined), have)
	if len(ops) != 1 {
		t.Fatalf("ops = %v", ops)
	}
	if got := ops[0].Carry[CounterVXLAN]; got != (Count{Packets: 7, Bytes: 700}) {
		t.Errorf("carried %s = %+v, want 7 packets 700 bytes", CounterVXLAN, got)
	}
	if _, ok := ops[0].Carry["gone"]; ok {
		t.Errorf("a counter the table no longer declares is carried: %v", ops[0].Carry)
	}
}

func TestShapeIgnoresOrderOfChainsAndElements(t *testing.T) {
	a := Build(sampleConfig())[0].Shape()
	b := a
	b.Chains = slices.Clone(a.Chains)
	slices.Reverse(b.Chains)
	b.Sets = map[string][]string{}
	for k, v := range a.Sets {
		b.Sets[k] = slices.Clone(v)
	}
	if !a.Equal(b) {
		t.Errorf("reordered chains are another shape")
	}
	b.Sets["members"] = []string{"192.168.9.9"}
	if a.Equal(b) {
		t.Errorf("another member set is the same shape")
	}
}
