package spec

import (
	"strings"
	"testing"
)

func TestResourcesParse(t *testing.T) {
	text := edit(t, base, "    command: [./api]\n", "    command: [./api]\n    resources: {memory: 256Mi, cpu: 0.5, pids: 512}\n")
	c, err := Parse([]byte(text), "/srv/lab")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var api Service
	for _, s := range c.Services {
		if s.Name == "api" {
			api = s
		}
	}
	want := Resources{Memory: 256 << 20, CPU: 0.5, Pids: 512}
	if api.Resources == nil || *api.Resources != want {
		t.Errorf("resources = %+v, want %+v", api.Resources, want)
	}
	if got := api.Resources.EffectivePids(); got != 512 {
		t.Errorf("EffectivePids = %d", got)
	}
	var none *Resources
	if got := none.EffectivePids(); got != DefaultPids {
		t.Errorf("EffectivePids without resources = %d, want %d", got, DefaultPids)
	}
}

func TestResourcesRefused(t *testing.T) {
	for _, tc := range []struct {
		name, value, field, fragment string
	}{
		{"memory without digits", "{memory: lots}", "resources.memory", "unit"},
		{"memory below 8Mi", "{memory: 1Mi}", "resources.memory", "8Mi"},
		{"memory 0", "{memory: 0}", "resources.memory", "0 is not a limit"},
		{"negative memory", "{memory: -5Mi}", "resources.memory", "negative"},
		{"memory overflowing", "{memory: 99999999999Ti}", "resources.memory", "too large"},
		{"cpu not a number", "{cpu: half}", "resources.cpu", "number of cores"},
		{"cpu 0", "{cpu: 0}", "resources.cpu", "0 is not a limit"},
		{"cpu negative", "{cpu: -1}", "resources.cpu", "0.01"},
		{"cpu too large", "{cpu: 5000}", "resources.cpu", "1024"},
		{"pids 0", "{pids: 0}", "resources.pids", "0 is not a limit"},
		{"pids too few", "{pids: 5}", "resources.pids", "32"},
		{"unknown key", "{disk: 1Gi}", "resources.disk", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := edit(t, base, "    command: [./api]\n", "    command: [./api]\n    resources: "+tc.value+"\n")
			ps := parseProblems(t, text)
			for _, p := range ps {
				if p.Field == "services.api."+tc.field && strings.Contains(p.Message+" "+p.Fix, tc.fragment) {
					return
				}
			}
			t.Errorf("no problem on services.api.%s mentioning %q: %v", tc.field, tc.fragment, ps)
		})
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "1Ki": 1024, "2Mi": 2 << 20, "1Gi": 1 << 30, "1G": 1e9, "5M": 5e6, "7k": 7000, "3B": 3} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Mi", "1.5Gi", "1 Xi", "-1"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
}
