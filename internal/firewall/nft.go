package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
)

// NFT is the Kernel of one network namespace, through google/nftables.
type NFT struct {
	NetNS int // fd of the network namespace; 0 for the caller's own
}

func (n NFT) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if n.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(n.NetNS))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}
	return c, nil
}

func tableFamily(f Family) nftables.TableFamily {
	if f == Bridge {
		return nftables.TableFamilyBridge
	}
	return nftables.TableFamilyINet
}

// hooks maps Chain.Hook to the kernel's hook numbers; the bridge family
// numbers its prerouting hook like inet does.
var hooks = map[string]nftables.ChainHook{
	"prerouting": *nftables.ChainHookPrerouting,
	"input":      *nftables.ChainHookInput,
	"forward":    *nftables.ChainHookForward,
	"output":     *nftables.ChainHookOutput,
}

func hookName(h *nftables.ChainHook) string {
	if h == nil {
		return ""
	}
	for name, v := range hooks {
		if v == *h {
			return name
		}
	}
	return fmt.Sprintf("hook%d", *h)
}

// Read returns weft's firewall tables as the kernel has them.
func (n NFT) Read(ctx context.Context) ([]State, error) {
	c, err := n.conn()
	if err != nil {
		return nil, err
	}
	var out []State
	for _, f := range []Family{Inet, Bridge} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s, ok, err := readTable(c, f)
		if err != nil && !tableExists(c, f) {
			continue // deleted while being read (the library does not wrap ENOENT): it is gone
		}
		if err != nil {
			return nil, fmt.Errorf("reading nftables table %s %s: %w", f, TableName, err)
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// tableExists says whether weft's table of family f is there; false when
// that cannot be read either.
func tableExists(c *nftables.Conn, f Family) bool {
	t, err := c.ListTableOfFamily(TableName, tableFamily(f))
	return err == nil && t != nil
}

func readTable(c *nftables.Conn, f Family) (State, bool, error) {
	tables, err := c.ListTablesOfFamily(tableFamily(f))
	if err != nil {
		return State{}, false, err
	}
	i := slices.IndexFunc(tables, func(t *nftables.Table) bool { return t.Name == TableName })
	if i < 0 {
		return State{}, false, nil
	}
	t := tables[i]
	st := State{Shape: Shape{Family: f, Name: TableName, Sets: map[string][]string{}}, Counters: map[string]Count{}}
	objs, err := c.GetObjects(t)
	if err != nil {
		return st, false, fmt.Errorf("listing counters: %w", err)
	}
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok {
			st.Shape.Counters = append(st.Shape.Counters, co.Name)
			st.Counters[co.Name] = Count{Packets: co.Packets, Bytes: co.Bytes}
		}
	}
	sets, err := c.GetSets(t)
	if err != nil {
		return st, false, fmt.Errorf("listing sets: %w", err)
	}
	for _, s := range sets {
		if s.Anonymous {
			continue
		}
		elems, err := c.GetSetElements(s)
		if err != nil {
			return st, false, fmt.Errorf("listing set %s: %w", s.Name, err)
		}
		list := []string{}
		for _, e := range elems {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				list = append(list, a.String())
			}
		}
		st.Shape.Sets[s.Name] = list
	}
	chains, err := c.ListChainsOfTableFamily(tableFamily(f))
	if err != nil {
		return st, false, fmt.Errorf("listing chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != TableName {
			continue
		}
		cs := ChainShape{Name: ch.Name, Hook: hookName(ch.Hooknum)}
		if ch.Priority != nil {
			cs.Priority = int(*ch.Priority)
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return st, false, fmt.Errorf("listing rules of chain %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			cs.Rules = append(cs.Rules, string(r.UserData))
		}
		st.Shape.Chains = append(st.Shape.Chains, cs)
	}
	st.Shape.normalize()
	for k := range st.Shape.Sets {
		slices.Sort(st.Shape.Sets[k])
	}
	slices.Sort(st.Shape.Counters)
	return st, true, nil
}

// Apply makes every change of ops in one nftables transaction.
func (n NFT) Apply(ctx context.Context, ops []Op) error {
	c, err := n.conn()
	if err != nil {
		return err
	}
	for _, op := range ops {
		if err := addOp(c, op); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction %v: %w", ops, err)
	}
	return nil
}

func addOp(c *nftables.Conn, op Op) error {
	t := &nftables.Table{Family: tableFamily(op.Family), Name: op.Name}
	// Add (a no-op when present) then delete: the transaction works
	// whether or not the table exists yet.
	c.AddTable(t)
	c.DelTable(t)
	if op.Delete {
		return nil
	}
	t = c.AddTable(t)
	for _, name := range op.Table.Counters {
		v := op.Carry[name]
		c.AddObj(&nftables.CounterObj{Table: t, Name: name, Packets: v.Packets, Bytes: v.Bytes})
	}
	sets := map[string]*nftables.Set{}
	for _, s := range op.Table.Sets {
		set := &nftables.Set{Table: t, Name: s.Name, KeyType: nftables.TypeIPAddr}
		var elems []nftables.SetElement
		for _, a := range s.Elems {
			elems = append(elems, nftables.SetElement{Key: a.AsSlice()})
		}
		if err := c.AddSet(set, elems); err != nil {
			return fmt.Errorf("adding set %s: %w", s.Name, err)
		}
		sets[s.Name] = set
	}
	chains := map[string]*nftables.Chain{}
	for _, ch := range op.Table.Chains {
		nc := &nftables.Chain{Name: ch.Name, Table: t}
		if ch.Hook != "" {
			h, ok := hooks[ch.Hook]
			if !ok {
				return fmt.Errorf("chain %s: unknown hook %q", ch.Name, ch.Hook)
			}
			accept := nftables.ChainPolicyAccept
			nc.Type, nc.Hooknum, nc.Priority, nc.Policy = nftables.ChainTypeFilter, &h, nftables.ChainPriorityRef(nftables.ChainPriority(ch.Priority)), &accept
		}
		chains[ch.Name] = c.AddChain(nc)
	}
	for _, ch := range op.Table.Chains {
		for _, r := range ch.Rules {
			ex, err := ruleExprs(r, sets)
			if err != nil {
				return fmt.Errorf("chain %s: %w", ch.Name, err)
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: chains[ch.Name], Exprs: ex, UserData: []byte(r.String())})
		}
	}
	return nil
}
