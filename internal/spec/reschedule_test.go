package spec

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRescheduleDefaults(t *testing.T) {
	text := edit(t, base, "    command: [./db]\n", "    command: [./db]\n    volumes: [{name: data, path: /data}]\n")
	c, err := Parse([]byte(text), "/srv/lab")
	if err != nil {
		t.Fatal(err)
	}
	if c.RescheduleAfter.Duration != DefaultRescheduleAfter {
		t.Errorf("cluster reschedule_after = %s, want %s", c.RescheduleAfter, DefaultRescheduleAfter)
	}
	api, _ := c.ServiceByName("api")
	db, _ := c.ServiceByName("db")
	if !api.Reschedules() || api.RescheduleAfter.Duration != DefaultRescheduleAfter {
		t.Errorf("api (no volumes): reschedules=%t after %s; want true after 5s", api.Reschedules(), api.RescheduleAfter)
	}
	if db.Reschedules() {
		t.Errorf("db has a volume: it must stay tied to its host by default")
	}
	before, _ := json.Marshal(c)
	c.ApplyDefaults()
	after, _ := json.Marshal(c)
	if string(before) != string(after) {
		t.Errorf("ApplyDefaults is not idempotent:\n%s\n%s", before, after)
	}
	var back Cluster
	if err := json.Unmarshal(before, &back); err != nil {
		t.Fatal(err)
	}
	if probs := back.Validate(); len(probs) > 0 {
		t.Errorf("the stored JSON does not validate again: %v", probs)
	}
	if b, _ := back.ServiceByName("db"); b.Reschedules() {
		t.Errorf("reschedule lost in the JSON round trip")
	}
}

func TestRescheduleWritten(t *testing.T) {
	text := edit(t, base,
		"provider: lab\n", "provider: lab\nreschedule_after: 8s\n",
		"    command: [./api]\n", "    command: [./api]\n    reschedule: false\n",
		"    command: [./db]\n", "    command: [./db]\n    volumes: [{name: data, path: /data}]\n    reschedule: true\n    reschedule_after: 2\n")
	c, err := Parse([]byte(text), "/srv/lab")
	if err != nil {
		t.Fatal(err)
	}
	api, _ := c.ServiceByName("api")
	db, _ := c.ServiceByName("db")
	if api.Reschedules() || api.RescheduleAfter.Duration != 8*time.Second {
		t.Errorf("api: reschedules=%t after %s; want false, the cluster's 8s", api.Reschedules(), api.RescheduleAfter)
	}
	if !db.Reschedules() || db.RescheduleAfter.Duration != 2*time.Second {
		t.Errorf("db: reschedules=%t after %s; want true after 2s (the file says so despite its volume)", db.Reschedules(), db.RescheduleAfter)
	}
}

func TestRescheduleRefusals(t *testing.T) {
	svc := func(line string) []string {
		return []string{"    command: [./api]\n", "    command: [./api]\n    " + line + "\n"}
	}
	cases := []struct {
		name, field, fragment string
		edits                 []string
	}{
		{"zero", "services.api.reschedule_after", "reschedule: false", svc("reschedule_after: 0")},
		{"zero with unit", "services.api.reschedule_after", "1s to 24h", svc("reschedule_after: 0s")},
		{"cluster zero", "reschedule_after", "reschedule: false", []string{"provider: lab\n", "provider: lab\nreschedule_after: 0\n"}},
		{"too short", "services.api.reschedule_after", "1s to 24h", svc("reschedule_after: 500ms")},
		{"negative", "services.api.reschedule_after", "1s to 24h", svc("reschedule_after: -5s")},
		{"too long", "reschedule_after", "1s to 24h", []string{"provider: lab\n", "provider: lab\nreschedule_after: 25h\n"}},
		{"not a duration", "services.api.reschedule_after", "500ms", svc("reschedule_after: soon")},
		{"not a bool", "services.api.reschedule", "true", svc("reschedule: maybe")},
		{"yaml 1.1 yes", "services.api.reschedule", "false", svc("reschedule: yes")},
		{"misspelt", "services.api.reschedual", "did you mean `reschedule`?", svc("reschedual: false")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantOneProblem(t, edit(t, base, tc.edits...), tc.field, tc.fragment)
		})
	}
}

// wantOneProblem checks that text has exactly one problem about field, with
// a line, a fix, and fragment in its message or fix.
func wantOneProblem(t *testing.T, text, field, fragment string) {
	t.Helper()
	problems := parseProblems(t, text)
	n := 0
	for _, p := range problems {
		if p.Field != field {
			continue
		}
		n++
		if p.Line == 0 || p.Fix == "" {
			t.Errorf("problem without a line or a fix: %+v", p)
		}
		if !strings.Contains(p.Message+" "+p.Fix, fragment) {
			t.Errorf("problem %q does not mention %q", p.String(), fragment)
		}
	}
	if n != 1 {
		t.Errorf("want exactly one problem for %s, got %d: %v", field, n, problems)
	}
}
