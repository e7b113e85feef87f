package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Rule delivers TCP to VIP:Port on this host to Target, a local instance on
// the overlay, while the VIP is live here.
type Rule struct {
	VIP    netip.Addr
	Port   uint16
	Target netip.AddrPort
}

// Delivery owns the nftables table that delivers VIPs inside one host
// namespace (weft's only nftables table there). Its layout:
//
//	table ip <name>
//	  set live { type ipv4_addr; flags timeout }   VIPs this host holds now
//	  chain pre  (nat prerouting dstnat):  ip daddr VIP tcp dport Port ip daddr @live dnat to Target
//	  chain post (nat postrouting srcnat): ip daddr Target.ip tcp dport Target.port ct status dnat masquerade
//	  chain fwd  (filter forward):         ip daddr VIP drop
//
// The rules of every VIP the host is a candidate for stay installed; they
// deliver nothing until the VIP is in set live. Holding a VIP is one element
// of that set with a timeout, refreshed after every renewal the store
// acknowledged: if the agent dies or freezes, the kernel drops the element
// by itself when the timeout runs out, so a stale holder stops delivering
// even when nothing of it runs any more. Masquerade makes the instance
// answer through this host, which undoes the DNAT on the way back.
//
// A packet for the VIP that was not delivered (the VIP is not live here: a
// holder between a missed renewal and its reclaim, a route that still
// leads to a fenced host) is dropped, never forwarded: the client's
// retransmission reaches whoever delivers by then, instead of an error or a
// packet bouncing between this host and the router.
type Delivery struct {
	Table string // nftables table name
	NetNS int    // fd of the network namespace; 0 for the caller's own
}

const liveSet = "live"

func (d Delivery) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if d.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(d.NetNS))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}
	return c, nil
}

func (d Delivery) table() *nftables.Table {
	return &nftables.Table{Name: d.Table, Family: nftables.TableFamilyIPv4}
}

func (d Delivery) set() *nftables.Set {
	return &nftables.Set{Table: d.table(), Name: liveSet, KeyType: nftables.TypeIPAddr, HasTimeout: true}
}

// Set replaces the table with one delivering rules (every VIP starts not
// live). An empty list removes the table. It is one nftables transaction:
// the host never sees half of it.
func (d Delivery) Set(rules []Rule) error {
	for _, r := range rules {
		if !r.VIP.Is4() || r.Port == 0 || !r.Target.Addr().Is4() || r.Target.Port() == 0 {
			return fmt.Errorf("delivery rule %+v: VIP, port and target must be IPv4 with ports", r)
		}
	}
	c, err := d.conn()
	if err != nil {
		return err
	}
	exists, err := d.exists(c)
	if err != nil {
		return err
	}
	if exists {
		c.DelTable(d.table())
	}
	if len(rules) > 0 {
		t := c.AddTable(d.table())
		set := d.set()
		set.Table = t
		if err := c.AddSet(set, nil); err != nil {
			return fmt.Errorf("adding set %s: %w", liveSet, err)
		}
		pre := c.AddChain(&nftables.Chain{Name: "pre", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
		post := c.AddChain(&nftables.Chain{Name: "post", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
		fwd := c.AddChain(&nftables.Chain{Name: "fwd", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter})
		var vips []netip.Addr
		for _, r := range rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: dnatExprs(set, r)})
			c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: masqExprs(r)})
			if !slices.Contains(vips, r.VIP) {
				vips = append(vips, r.VIP)
				c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: dropToExprs(r.VIP)})
			}
		}
	} else if !exists {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("writing nftables table %s: %w", d.Table, err)
	}
	return nil
}

func (d Delivery) exists(c *nftables.Conn) (bool, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("listing nftables tables: %w", err)
	}
	return slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == d.Table }), nil
}

// Live makes vip live for validFor from now (at least 1 ms): the kernel
// drops it by itself afterwards unless Live is called again.
func (d Delivery) Live(vip netip.Addr, validFor time.Duration) error {
	validFor = max(validFor.Truncate(time.Millisecond), time.Millisecond)
	c, err := d.conn()
	if err != nil {
		return err
	}
	set := d.set()
	key := vip.AsSlice()
	// add (a no-op when present), delete, add with the new timeout: one
	// transaction that works whether or not the element exists yet.
	if err := c.SetAddElements(set, []nftables.SetElement{{Key: key, Timeout: validFor}}); err != nil {
		return err
	}
	if err := c.SetDeleteElements(set, []nftables.SetElement{{Key: key}}); err != nil {
		return err
	}
	if err := c.SetAddElements(set, []nftables.SetElement{{Key: key, Timeout: validFor}}); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("making VIP %s live for %s in table %s: %w", vip, validFor, d.Table, err)
	}
	return nil
}

// Fence stops delivering vip at once. A VIP that is not live, or a table
// that does not exist, is fine.
func (d Delivery) Fence(vip netip.Addr) error {
	live, err := d.LiveVIPs()
	if err != nil || !slices.Contains(live, vip) {
		return err
	}
	c, err := d.conn()
	if err != nil {
		return err
	}
	if err := c.SetDeleteElements(d.set(), []nftables.SetElement{{Key: vip.AsSlice()}}); err != nil {
		return err
	}
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("fencing VIP %s in table %s: %w", vip, d.Table, err)
	}
	return nil
}

// LiveVIPs lists the VIPs delivered now (expired elements are not listed);
// none when the table does not exist.
func (d Delivery) LiveVIPs() ([]netip.Addr, error) {
	c, err := d.conn()
	if err != nil {
		return nil, err
	}
	exists, err := d.exists(c)
	if err != nil || !exists {
		return nil, err
	}
	elems, err := c.GetSetElements(d.set())
	if err != nil {
		return nil, fmt.Errorf("listing live VIPs in table %s: %w", d.Table, err)
	}
	var out []netip.Addr
	for _, e := range elems {
		if a, ok := netip.AddrFromSlice(e.Key); ok {
			out = append(out, a)
		}
	}
	return out, nil
}

func port(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

// matchTCPTo is "ip daddr addr tcp dport p".
func matchTCPTo(addr netip.Addr, p uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr.AsSlice()},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port(p)},
	}
}

func dnatExprs(live *nftables.Set, r Rule) []expr.Any {
	return append(matchTCPTo(r.VIP, r.Port),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: live.Name, SetID: live.ID},
		&expr.Immediate{Register: 1, Data: r.Target.Addr().AsSlice()},
		&expr.Immediate{Register: 2, Data: port(r.Target.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
}

// dropToExprs is "ip daddr addr drop".
func dropToExprs(addr netip.Addr) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr.AsSlice()},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

func masqExprs(r Rule) []expr.Any {
	return append(matchTCPTo(r.Target.Addr(), r.Target.Port()),
		&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ctStatusDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Masq{},
	)
}

// ctStatusDstNAT is IPS_DST_NAT of the conntrack status bits.
const ctStatusDstNAT = 1 << 5
