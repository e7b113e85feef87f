package firewall

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// fakeKernel keeps tables as their shapes and records every transaction.
type fakeKernel struct {
	tables  map[Family]State
	applied [][]string
	readErr error
}

func (k *fakeKernel) Read(context.Context) ([]State, error) {
	if k.readErr != nil {
		return nil, k.readErr
	}
	var out []State
	for _, f := range []Family{Inet, Bridge} {
		if s, ok := k.tables[f]; ok {
			out = append(out, s)
		}
	}
	return out, nil
}

func (k *fakeKernel) Apply(_ context.Context, ops []Op) error {
	if k.tables == nil {
		k.tables = map[Family]State{}
	}
	k.applied = append(k.applied, opStrings(ops))
	for _, op := range ops {
		if op.Delete {
			delete(k.tables, op.Family)
			continue
		}
		counts := map[string]Count{}
		for _, name := range op.Table.Counters {
			counts[name] = op.Carry[name]
		}
		k.tables[op.Family] = State{Shape: op.Table.Shape(), Counters: counts}
	}
	return nil
}

func TestSetIsIdempotent(t *testing.T) {
	k := &fakeKernel{}
	fw := Firewall{Kernel: k}
	ctx := context.Background()
	c := sampleConfig()
	for range 3 {
		if err := fw.Set(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if len(k.applied) != 1 {
		t.Fatalf("transactions = %q, want one", k.applied)
	}
	// A host leaves: one write of the inet table, counters kept.
	k.tables[Inet].Counters[CounterVXLAN] = Count{Packets: 3}
	c.Members = c.Members[:2]
	if err := fw.Set(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := k.applied[len(k.applied)-1]; !slices.Equal(got, []string{"write inet weft-fw"}) {
		t.Errorf("after a host left: %q", got)
	}
	if st := fw.Status(ctx); !st.On || st.Dropped[CounterVXLAN].Packets != 3 {
		t.Errorf("status = %+v, want on with 3 VXLAN drops kept", st)
	}
	if err := fw.Set(ctx, Config{}); err != nil {
		t.Fatal(err)
	}
	if len(k.tables) != 0 {
		t.Errorf("Set(off) left %v", k.tables)
	}
	if st := fw.Status(ctx); st.On {
		t.Errorf("status after off = %+v", st)
	}
}

func TestInitKeepsAnExistingFirewall(t *testing.T) {
	k := &fakeKernel{}
	fw := Firewall{Kernel: k}
	ctx := context.Background()
	running := sampleConfig()
	if err := fw.Set(ctx, running); err != nil {
		t.Fatal(err)
	}
	boot := sampleConfig()
	boot.Containers = nil
	if err := fw.Init(ctx, boot); err != nil {
		t.Fatal(err)
	}
	if len(k.applied) != 1 {
		t.Errorf("Init rewrote the firewall of running containers: %q", k.applied)
	}
	empty := &fakeKernel{}
	if err := (Firewall{Kernel: empty}).Init(ctx, boot); err != nil {
		t.Fatal(err)
	}
	if len(empty.tables) != 2 {
		t.Errorf("Init on a bare host wrote %v", empty.applied)
	}
}

func TestSetRefusesABadConfigAndWritesNothing(t *testing.T) {
	k := &fakeKernel{}
	c := sampleConfig()
	c.VXLANPort = 0
	c.Containers[0].IP = netip.Addr{}
	err := Firewall{Kernel: k}.Set(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "VXLANPort") || !strings.Contains(err.Error(), "Containers[0] (web-1)") {
		t.Fatalf("err = %v, want VXLANPort and Containers[0] named", err)
	}
	if len(k.applied) != 0 {
		t.Errorf("wrote %q", k.applied)
	}
}

func TestStatusSaysWhyItCannotRead(t *testing.T) {
	st := Firewall{Kernel: &fakeKernel{readErr: errors.New("no nftables")}}.Status(context.Background())
	if st.On || st.Error != "no nftables" {
		t.Errorf("status = %+v", st)
	}
}
