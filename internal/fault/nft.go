package fault

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The packet faults (loss, partition, latency) are one nftables table per
// fault and namespace, named after the fault, so removing the fault is
// deleting its tables and nothing else is ever touched.

// nftRule is one rule of a fault's table.
type nftRule struct {
	Hook    string     // output | input
	Peer    netip.Addr // daddr (output) or saddr (input); invalid: any but loopback
	Percent int        // drop with this probability (loss); 0: every match
	Queue   uint16     // NFQUEUE number (latency); 0: drop
}

// nftTable is one fault's table in one namespace.
type nftTable struct {
	Netns string
	Name  string
	Rules []nftRule
}

// TableName is the nftables table of fault id.
func TableName(id string) string { return "weft_fault_" + id }

// nftPlan turns a packet fault into the tables it needs. It is pure.
func nftPlan(r *Record) []nftTable {
	var out []nftTable
	for _, p := range r.Parts {
		t := nftTable{Netns: p.Netns, Name: TableName(r.ID)}
		peers := p.Peers
		if len(peers) == 0 {
			peers = []netip.Addr{{}}
		}
		for _, peer := range peers {
			base := nftRule{Hook: "output", Peer: peer}
			switch r.Kind {
			case Loss:
				base.Percent = r.Percent
			case Latency:
				base.Queue = p.Queue
			}
			t.Rules = append(t.Rules, base)
			if p.Inbound {
				in := base
				in.Hook = "input"
				t.Rules = append(t.Rules, in)
			}
		}
		out = append(out, t)
	}
	return out
}

// QueueNumber derives a fault's NFQUEUE number from its id (1-65535).
func QueueNumber(id string) uint16 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return uint16(h.Sum32()%65535) + 1
}

func applyNFT(ctx context.Context, r *Record) error {
	for _, t := range nftPlan(r) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := setTable(t); err != nil {
			return err
		}
	}
	return nil
}

func removeNFT(ctx context.Context, r *Record) error {
	for _, p := range r.Parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := deleteTable(p.Netns, TableName(r.ID)); err != nil {
			return err
		}
	}
	return nil
}

func nftIn(nsName string) (*nftables.Conn, func(), error) {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return nil, nil, fmt.Errorf("opening namespace %s: %w", nsName, err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		ns.Close()
		return nil, nil, fmt.Errorf("opening nftables in namespace %s: %w", nsName, err)
	}
	return c, func() { _ = c.CloseLasting(); ns.Close() }, nil
}

// deleteTable removes the table when it exists (a namespace that is gone
// holds no rules either).
func deleteTable(nsName, name string) error {
	c, done, err := nftIn(nsName)
	if err != nil {
		if _, statErr := netns.GetFromName(nsName); statErr != nil {
			return nil
		}
		return err
	}
	defer done()
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("listing nftables tables in %s: %w", nsName, err)
	}
	for _, t := range tables {
		if t.Name == name {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("deleting nftables table %s in %s: %w", name, nsName, err)
			}
		}
	}
	return nil
}

// setTable replaces the table with exactly t's rules.
func setTable(t nftTable) error {
	if err := deleteTable(t.Netns, t.Name); err != nil {
		return err
	}
	c, done, err := nftIn(t.Netns)
	if err != nil {
		return err
	}
	defer done()
	table := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: t.Name})
	chains := map[string]*nftables.Chain{}
	for _, hook := range []string{"output", "input"} {
		h := nftables.ChainHookOutput
		if hook == "input" {
			h = nftables.ChainHookInput
		}
		chains[hook] = c.AddChain(&nftables.Chain{Name: hook, Table: table, Type: nftables.ChainTypeFilter,
			Hooknum: h, Priority: nftables.ChainPriorityFilter})
	}
	for _, r := range t.Rules {
		c.AddRule(&nftables.Rule{Table: table, Chain: chains[r.Hook], Exprs: ruleExprs(r)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("writing nftables table %s in %s: %w", t.Name, t.Netns, err)
	}
	return nil
}

func ruleExprs(r nftRule) []expr.Any {
	var ex []expr.Any
	if r.Peer.IsValid() {
		offset := uint32(16) // daddr
		if r.Hook == "input" {
			offset = 12 // saddr
		}
		a := r.Peer.As4()
		ex = append(ex,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]})
	} else {
		key := expr.MetaKeyOIFNAME
		if r.Hook == "input" {
			key = expr.MetaKeyIIFNAME
		}
		lo := make([]byte, 16)
		copy(lo, "lo")
		ex = append(ex,
			&expr.Meta{Key: key, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: lo})
	}
	if r.Percent > 0 && r.Percent < 100 {
		ex = append(ex,
			&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint32(uint32(r.Percent))})
	}
	if r.Queue > 0 {
		// The kernel here has no nft queue expression; the xtables NFQUEUE
		// target (revision 3: queuenum, queues_total, flags) runs through
		// nft_compat. Bypass: with no listener, packets pass.
		info := make(xt.Unknown, 6)
		binary.NativeEndian.PutUint16(info[0:], r.Queue)
		binary.NativeEndian.PutUint16(info[2:], 1)
		binary.NativeEndian.PutUint16(info[4:], 1) // NFQ_FLAG_BYPASS
		ex = append(ex, &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info})
		return ex
	}
	return append(ex, &expr.Verdict{Kind: expr.VerdictDrop})
}

// TablesIn lists the weft fault tables in a namespace (tests and
// diagnostics: nothing may be left after rollback).
func TablesIn(nsName string) ([]string, error) {
	c, done, err := nftIn(nsName)
	if err != nil {
		return nil, err
	}
	defer done()
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("listing nftables tables in %s: %w", nsName, err)
	}
	var out []string
	for _, t := range tables {
		if len(t.Name) > len("weft_fault_") && t.Name[:len("weft_fault_")] == "weft_fault_" {
			out = append(out, t.Name)
		}
	}
	return out, nil
}
