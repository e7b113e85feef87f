package spec

import (
	"encoding/json"
	"testing"
)

func TestFirewallField(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       bool
	}{
		{"left out: on", "", true},
		{"written true", "firewall: true\n", true},
		{"written false", "firewall: false\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(edit(t, base, "provider: lab\n", "provider: lab\n"+tc.line)), "/srv/lab")
			if err != nil {
				t.Fatal(err)
			}
			if c.FirewallOn() != tc.want {
				t.Errorf("FirewallOn = %t, want %t", c.FirewallOn(), tc.want)
			}
			b, _ := json.Marshal(c)
			var back Cluster
			if err := json.Unmarshal(b, &back); err != nil || back.FirewallOn() != tc.want {
				t.Errorf("lost in the stored JSON: %v %t", err, back.FirewallOn())
			}
		})
	}
	problems := parseProblems(t, edit(t, base, "provider: lab\n", "provider: lab\nfirewall: off\n"))
	if len(problems) != 1 || problems[0].Field != "firewall" || problems[0].Fix == "" {
		t.Errorf("firewall: off should be one problem naming the field with a fix, got %v", problems)
	}
}
