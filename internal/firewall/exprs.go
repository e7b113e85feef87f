package firewall

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ruleExprs turns a rule into nftables expressions; sets are the table's
// named sets as added in the same transaction (a lookup needs their id).
func ruleExprs(r Rule, sets map[string]*nftables.Set) ([]expr.Any, error) {
	var out []expr.Any
	for _, m := range r.Match {
		ex, err := matchExprs(m, sets)
		if err != nil {
			return nil, fmt.Errorf("rule %q: %w", r, err)
		}
		out = append(out, ex...)
	}
	if r.Counter != "" {
		out = append(out, &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: r.Counter})
	}
	switch r.Verdict.Kind {
	case "accept":
		out = append(out, &expr.Verdict{Kind: expr.VerdictAccept})
	case "drop":
		out = append(out, &expr.Verdict{Kind: expr.VerdictDrop})
	case "jump":
		out = append(out, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Verdict.Chain})
	case "notrack":
		out = append(out, &expr.Notrack{})
	default:
		return nil, fmt.Errorf("rule %q: unknown verdict %q", r, r.Verdict.Kind)
	}
	return out, nil
}

func cmpOp(neg bool) expr.CmpOp {
	if neg {
		return expr.CmpOpNeq
	}
	return expr.CmpOpEq
}

func load(base expr.PayloadBase, offset, length uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: length}
}

func cmp(neg bool, data []byte) *expr.Cmp {
	return &expr.Cmp{Op: cmpOp(neg), Register: 1, Data: data}
}

// ifnameData is what an interface name is compared with: the whole
// zero-padded name, or only the prefix before a trailing "*".
func ifnameData(name string) []byte {
	if p, ok := strings.CutSuffix(name, "*"); ok {
		return []byte(p)
	}
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func parseMAC(s string) ([]byte, error) {
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("MAC %q is not an Ethernet address", s)
	}
	return mac, nil
}

func matchExprs(m Match, sets map[string]*nftables.Set) ([]expr.Any, error) {
	switch m := m.(type) {
	case IfName:
		key := expr.MetaKeyIIFNAME
		if m.Out {
			key = expr.MetaKeyOIFNAME
		}
		return []expr.Any{&expr.Meta{Key: key, Register: 1}, cmp(m.Not, ifnameData(m.Name))}, nil
	case IPv4:
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp(false, []byte{unix.NFPROTO_IPV4})}, nil
	case Dport:
		proto := byte(unix.IPPROTO_TCP)
		switch m.Proto {
		case "tcp":
		case "udp":
			proto = unix.IPPROTO_UDP
		default:
			return nil, fmt.Errorf("protocol %q: use tcp or udp", m.Proto)
		}
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp(false, []byte{proto}),
			load(expr.PayloadBaseTransportHeader, 2, 2), cmp(false, binary.BigEndian.AppendUint16(nil, m.Port)),
		}, nil
	case Addr:
		if !m.Addr.Is4() {
			return nil, fmt.Errorf("address %v is not IPv4", m.Addr)
		}
		offset := uint32(16)
		if m.Src {
			offset = 12
		}
		return []expr.Any{load(expr.PayloadBaseNetworkHeader, offset, 4), cmp(m.Not, m.Addr.AsSlice())}, nil
	case SaddrIn:
		s, ok := sets[m.Set]
		if !ok {
			return nil, fmt.Errorf("set %q is not in the table", m.Set)
		}
		return []expr.Any{
			load(expr.PayloadBaseNetworkHeader, 12, 4),
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: m.Not},
		}, nil
	case Established:
		return []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		}, nil
	case EtherType:
		return []expr.Any{load(expr.PayloadBaseLLHeader, 12, 2), cmp(m.Not, binary.BigEndian.AppendUint16(nil, m.Type))}, nil
	case EtherSaddr:
		mac, err := parseMAC(m.MAC)
		if err != nil {
			return nil, err
		}
		return []expr.Any{load(expr.PayloadBaseLLHeader, 6, 6), cmp(m.Not, mac)}, nil
	case ARPSender:
		// Ethernet/IPv4 ARP: sender MAC at 8, sender address at 14.
		if m.MAC != "" {
			mac, err := parseMAC(m.MAC)
			if err != nil {
				return nil, err
			}
			return []expr.Any{load(expr.PayloadBaseNetworkHeader, 8, 6), cmp(m.Not, mac)}, nil
		}
		if !m.IP.Is4() {
			return nil, fmt.Errorf("ARP sender address %v is not IPv4", m.IP)
		}
		return []expr.Any{load(expr.PayloadBaseNetworkHeader, 14, 4), cmp(m.Not, m.IP.AsSlice())}, nil
	}
	return nil, fmt.Errorf("unknown match %T", m)
}
