package firewall

import "fmt"

// Count is a named counter's value.
type Count struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// State is one of weft's tables as the kernel has it now.
type State struct {
	Shape    Shape
	Counters map[string]Count
}

// Op is one change to the kernel's tables. A table is always written
// whole, in one transaction with its deletion, so the host never sees half
// of it; its counters start from the values they had (Carry), so a
// membership change does not reset what `weft status` shows.
type Op struct {
	Delete bool
	Family Family
	Name   string
	Table  Table            // what to write, unless Delete
	Carry  map[string]Count // counter values to start from
}

func (o Op) String() string {
	if o.Delete {
		return fmt.Sprintf("delete %s %s", o.Family, o.Name)
	}
	return fmt.Sprintf("write %s %s", o.Family, o.Name)
}

// Plan returns what turns have into want: nothing when every table already
// has its shape, a write for each table that differs or is missing, and a
// delete for each of weft's tables that is no longer wanted. It is pure.
func Plan(want []Table, have []State) []Op {
	current := map[Family]State{}
	for _, s := range have {
		if s.Shape.Name == TableName {
			current[s.Shape.Family] = s
		}
	}
	var ops []Op
	wanted := map[Family]bool{}
	for _, t := range want {
		wanted[t.Family] = true
		cur, ok := current[t.Family]
		if ok && cur.Shape.Equal(t.Shape()) {
			continue
		}
		carry := map[string]Count{}
		for _, name := range t.Counters {
			if v, ok := cur.Counters[name]; ok {
				carry[name] = v
			}
		}
		ops = append(ops, Op{Family: t.Family, Name: t.Name, Table: t, Carry: carry})
	}
	for _, f := range []Family{Inet, Bridge} {
		if _, ok := current[f]; ok && !wanted[f] {
			ops = append(ops, Op{Delete: true, Family: f, Name: TableName})
		}
	}
	return ops
}
