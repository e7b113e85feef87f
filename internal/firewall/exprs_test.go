package firewall

import (
	"bytes"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func TestEveryBuiltRuleHasExpressions(t *testing.T) {
	for _, tb := range Build(sampleConfig()) {
		sets := map[string]*nftables.Set{}
		for _, s := range tb.Sets {
			sets[s.Name] = &nftables.Set{Name: s.Name}
		}
		for _, ch := range tb.Chains {
			for _, r := range ch.Rules {
				ex, err := ruleExprs(r, sets)
				if err != nil {
					t.Errorf("%s %s: %v", tb.Family, ch.Name, err)
					continue
				}
				last := ex[len(ex)-1]
				if r.Verdict == NoTrack {
					if _, ok := last.(*expr.Notrack); !ok {
						t.Errorf("%s %s: rule %q does not end with notrack", tb.Family, ch.Name, r)
					}
				} else if _, ok := last.(*expr.Verdict); !ok {
					t.Errorf("%s %s: rule %q does not end with its verdict", tb.Family, ch.Name, r)
				}
			}
		}
	}
}

func TestInterfaceNamesMatchWholeOrPrefix(t *testing.T) {
	if got := ifnameData("vw*"); !bytes.Equal(got, []byte("vw")) {
		t.Errorf("prefix data = %q", got)
	}
	if got := ifnameData("br-vxlan"); len(got) != 16 || !bytes.HasPrefix(got, []byte("br-vxlan\x00")) {
		t.Errorf("exact data = %q, want the zero-padded 16-byte name", got)
	}
}

func TestMatchErrorsNameTheProblem(t *testing.T) {
	for _, m := range []Match{Dport{Proto: "sctp", Port: 1}, SaddrIn{Set: "nope"}, EtherSaddr{MAC: "zz"}} {
		if _, err := matchExprs(m, nil); err == nil {
			t.Errorf("%s: no error", m)
		}
	}
}
