package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
)

func TestWithinToleranceFollowsChaoslib(t *testing.T) {
	status := func(s int64) map[string]any { return map[string]any{"status": s, "body": "ok"} }
	cases := []struct {
		name  string
		tol   any
		value any
		want  bool
	}{
		{"bool equal", true, true, true},
		{"bool differs", true, false, false},
		{"bool vs dict", true, status(200), false},
		{"string equal", "up", "up", true},
		{"string differs", "up", "down", false},
		{"int equal", int64(6), int64(6), true},
		{"int differs", int64(6), int64(7), false},
		{"int vs status", int64(200), status(200), true},
		{"int vs other status", int64(200), status(503), false},
		{"list status membership", []any{int64(200), int64(201)}, status(201), true},
		{"list status not member", []any{int64(200), int64(201)}, status(250), false},
		{"two numbers are a range", []any{int64(1), int64(10)}, int64(5), true},
		{"range bounds inclusive", []any{int64(1), int64(10)}, int64(10), true},
		{"outside range", []any{int64(1), int64(10)}, int64(11), false},
		{"two strings are membership", []any{"a", "b"}, "b", true},
		{"three numbers are membership", []any{int64(1), int64(5), int64(9)}, int64(5), true},
		{"three numbers not member", []any{int64(1), int64(5), int64(9)}, int64(6), false},
		{"regex on target", map[string]any{"type": "regex", "target": "body", "pattern": "^o."}, status(200), true},
		{"regex no match", map[string]any{"type": "regex", "target": "body", "pattern": "^x"}, status(200), false},
		{"jsonpath found", map[string]any{"type": "jsonpath", "path": "$.items[*].id"}, `{"items":[{"id":1},{"id":2}]}`, true},
		{"jsonpath count", map[string]any{"type": "jsonpath", "path": "$.items[*].id", "count": int64(2)}, `{"items":[{"id":1},{"id":2}]}`, true},
		{"jsonpath count wrong", map[string]any{"type": "jsonpath", "path": "$.items[*].id", "count": int64(3)}, `{"items":[{"id":1},{"id":2}]}`, false},
		{"jsonpath expect", map[string]any{"type": "jsonpath", "path": "$.a", "expect": "x", "target": "body"}, map[string]any{"body": map[string]any{"a": "x"}}, true},
		{"jsonpath expect differs", map[string]any{"type": "jsonpath", "path": "$.a", "expect": "y", "target": "body"}, map[string]any{"body": map[string]any{"a": "x"}}, false},
		{"range on target", map[string]any{"type": "range", "range": []any{int64(0), 0.5}, "target": "p"}, map[string]any{"p": 0.25}, true},
		{"range outside", map[string]any{"type": "range", "range": []any{int64(0), 0.5}}, "0.75", false},
	}
	for _, c := range cases {
		got, err := WithinTolerance(context.Background(), c.tol, c.value, nil, nil)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: WithinTolerance(%v, %v) = %t, want %t", c.name, c.tol, c.value, got, c.want)
		}
	}
}

func TestProbeTolerance(t *testing.T) {
	run := func(_ context.Context, tol map[string]any) (any, error) {
		args := tol["provider"].(map[string]any)["arguments"].(map[string]any)
		return args["value"] == int64(3), nil
	}
	tol := map[string]any{"type": "probe", "provider": map[string]any{"type": "x"}}
	for v, want := range map[int64]bool{3: true, 4: false} {
		got, _ := WithinTolerance(context.Background(), tol, v, nil, run)
		if got != want {
			t.Errorf("probe tolerance on %d = %t", v, got)
		}
	}
	failing := func(context.Context, map[string]any) (any, error) { return nil, errors.New("boom") }
	if got, _ := WithinTolerance(context.Background(), tol, int64(3), nil, failing); got {
		t.Error("a failing probe tolerance is within tolerance")
	}
}

func TestSubstitution(t *testing.T) {
	e, err := Parse([]byte(`{"title":"t","configuration":{"base":"http://127.0.0.1:8080","n":{"type":"env","key":"N_X","default":3}},
	  "secrets":{"s":{"token":"abc"}},
	  "method":[{"type":"action","name":"a","provider":{"type":"http","url":"${base}/x?t=${token}","timeout":"${n}"}}]}`), ".json", nil)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := ResolveValues(e, map[string]string{"base": "http://127.0.0.1:9"}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p := vals.Substitute(e.Method[0].Provider).(map[string]any)
	if p["url"] != "http://127.0.0.1:9/x?t=abc" {
		t.Errorf("url = %v", p["url"])
	}
	if p["timeout"] != int64(3) {
		t.Errorf("a whole ${n} keeps its type: %#v", p["timeout"])
	}
	if got := vals.Substitute("${unknown}"); got != "${unknown}" {
		t.Errorf("unknown names stay: %v", got)
	}
	e.Configuration["must"] = map[string]any{"type": "env", "key": "NOPE"}
	if _, err := ResolveValues(e, nil, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "NOPE") {
		t.Errorf("unset env without default: %v", err)
	}
}

func TestBadExperimentsNameEveryProblem(t *testing.T) {
	bad := `
title: ""
unknown: 1
steady-state-hypothesis:
  title: h
  probes:
    - {type: action, name: p, provider: {type: http, url: "http://127.0.0.1:1"}}
    - {type: probe, name: q, provider: {type: http}, tolerance: {type: regex, pattern: "("}}
method:
  - {type: probe, name: m, provider: {type: python, module: x, func: y}}
  - {ref: nothing}
  - {type: action, name: w, provider: {type: weft, func: nope}}
rollbacks:
  - {type: probe, name: r, provider: {type: process}}
`
	checks := map[string]ProviderCheck{"weft": func(f string, p map[string]any, ps *Problems) {
		ps.add(f+".func", "bad", "")
	}}
	_, err := Parse([]byte(bad), ".yaml", checks)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []string{"title", "unknown", "steady-state-hypothesis.probes[0].type", "steady-state-hypothesis.probes[0].tolerance",
		"steady-state-hypothesis.probes[1].tolerance.pattern", "steady-state-hypothesis.probes[1].provider.url",
		"method[0].provider.type", "method[1].ref", "method[2].provider.func", "rollbacks[0].type", "rollbacks[0].provider.path"}
	var got []string
	for _, p := range ps {
		got = append(got, p.Field)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("no problem for %s; got %v", w, got)
		}
	}
	for _, text := range []string{"", "[1,2]", "{", "title: x\nmethod: []\n"} {
		if _, err := Parse([]byte(text), ".yaml", nil); !errors.As(err, &ps) {
			t.Errorf("%q: want Problems, got %v", text, err)
		}
	}
}

// fake provider: outputs from a table; "fail" fails.
type fake struct{ calls atomic.Int32 }

func (f *fake) Run(ctx context.Context, p map[string]any) (any, error) {
	f.calls.Add(1)
	if p["fail"] == true {
		return nil, errors.New("asked to fail")
	}
	if p["block"] == true {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return p["out"], nil
}

func experiment(t *testing.T, before, method string) *Experiment {
	t.Helper()
	doc := `{"title":"t","steady-state-hypothesis":{"title":"h","probes":[
	  {"type":"probe","name":"p","provider":{"type":"fake","out":true},"tolerance":` + before + `}]},
	  "method":[` + method + `],
	  "rollbacks":[{"type":"action","name":"rb","provider":{"type":"fake","out":"rolled"}}]}`
	e, err := Parse([]byte(doc), ".json", map[string]ProviderCheck{"fake": noCheck, "block": noCheck, "flip": noCheck})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRunStatusesAndVerdict(t *testing.T) {
	ok := `{"type":"action","name":"a","provider":{"type":"fake","out":1}}`
	failing := `{"type":"action","name":"boom","provider":{"type":"fake","fail":true}}`
	cases := []struct {
		name, tol, method   string
		status              string
		deviated, passed    bool
		before, meth, after string
	}{
		{"all good", "true", ok, StatusCompleted, false, true, "met", "ok", "met"},
		{"before not met", "false", ok, StatusFailed, false, false, "not met", "not run", "not run"},
		{"method fails", "true", failing, StatusFailed, false, false, "met", "failed: boom", "met"},
	}
	for _, c := range cases {
		f := &fake{}
		r := &Runner{Providers: map[string]Provider{"fake": f}}
		j := r.Run(context.Background(), experiment(t, c.tol, c.method))
		if j.Status != c.status || j.Deviated != c.deviated || j.Passed() != c.passed {
			t.Errorf("%s: status %s deviated %t passed %t", c.name, j.Status, j.Deviated, j.Passed())
		}
		if j.Weft.Before != c.before || j.Weft.Method != c.meth || j.Weft.After != c.after {
			t.Errorf("%s: verdict parts %+v", c.name, j.Weft)
		}
		if len(j.Rollbacks) != 1 || j.Rollbacks[0].Status != RunSucceeded {
			t.Errorf("%s: rollbacks did not run: %+v", c.name, j.Rollbacks)
		}
		if want := map[bool]string{true: "VERDICT: PASSED", false: "VERDICT: FAILED"}[c.passed]; !strings.HasPrefix(j.Weft.Verdict, want) {
			t.Errorf("%s: verdict %q", c.name, j.Weft.Verdict)
		}
	}
}

func TestDeviationAfterMethod(t *testing.T) {
	// The probe's output flips after the method: tolerance met before only.
	f := &fake{}
	var n atomic.Int32
	flip := ProviderFunc(func(ctx context.Context, p map[string]any) (any, error) { return n.Add(1) == 1, nil })
	e := experiment(t, "true", `{"type":"action","name":"a","provider":{"type":"fake","out":1}}`)
	e.Hypothesis.Probes[0].Provider["type"] = "flip"
	r := &Runner{Providers: map[string]Provider{"fake": f, "flip": flip}}
	j := r.Run(context.Background(), e)
	if j.Status != StatusCompleted || !j.Deviated || j.Passed() || j.Weft.After != "not met" {
		t.Errorf("status %s deviated %t weft %+v", j.Status, j.Deviated, j.Weft)
	}
	if met := j.SteadyStates.After.Probes[0].ToleranceMet; met == nil || *met {
		t.Errorf("tolerance_met after = %v", met)
	}
}

func TestInterruptRunsRollbacksAndCleanup(t *testing.T) {
	f := &fake{}
	ctx, cancel := context.WithCancel(context.Background())
	blocker := ProviderFunc(func(c context.Context, _ map[string]any) (any, error) { cancel(); <-c.Done(); return nil, c.Err() })
	e := experiment(t, "true", `{"type":"action","name":"a","provider":{"type":"block"}}`)
	cleaned := false
	r := &Runner{Providers: map[string]Provider{"fake": f, "block": blocker},
		Cleanup: func(context.Context) []map[string]any { cleaned = true; return nil }}
	j := r.Run(ctx, e)
	if j.Status != StatusInterrupted || j.Weft.Method != "interrupted" {
		t.Errorf("status %s method %s", j.Status, j.Weft.Method)
	}
	if len(j.Rollbacks) != 1 || j.Rollbacks[0].Status != RunSucceeded || !cleaned {
		t.Errorf("rollbacks %+v cleaned %t", j.Rollbacks, cleaned)
	}
}

func TestRollbackStrategies(t *testing.T) {
	for strategy, want := range map[string]int{RollbackNever: 0, RollbackDeviated: 0, RollbackAlways: 1, RollbackDefault: 1} {
		r := &Runner{Providers: map[string]Provider{"fake": &fake{}}, RollbackStrategy: strategy}
		j := r.Run(context.Background(), experiment(t, "true", `{"type":"action","name":"a","provider":{"type":"fake"}}`))
		if len(j.Rollbacks) != want {
			t.Errorf("%s: %d rollbacks run", strategy, len(j.Rollbacks))
		}
	}
}

func TestBackgroundAndRefAndPauses(t *testing.T) {
	f := &fake{}
	method := `{"type":"action","name":"bg","background":true,"provider":{"type":"fake","out":1}},
	 {"type":"probe","name":"second","pauses":{"before":0.01,"after":0.01},"provider":{"type":"fake","out":2}},
	 {"ref":"second"}`
	r := &Runner{Providers: map[string]Provider{"fake": f}}
	j := r.Run(context.Background(), experiment(t, "true", method))
	if len(j.Run) != 3 || j.Run[2].Activity["name"] != "second" || !j.Passed() {
		t.Errorf("runs %d, third %v, passed %t", len(j.Run), j.Run[2].Activity["name"], j.Passed())
	}
}

// The journal's field names and status values are Chaos Toolkit's.
func TestJournalShape(t *testing.T) {
	r := &Runner{Providers: map[string]Provider{"fake": &fake{}}}
	j := r.Run(context.Background(), experiment(t, "true", `{"type":"action","name":"a","provider":{"type":"fake","out":1}}`))
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"chaoslib-version", "deviated", "duration", "end", "experiment", "node", "platform", "rollbacks", "run", "start", "status", "steady_states", "weft"}
	if !slices.Equal(keys, want) {
		t.Errorf("journal keys %v, want %v", keys, want)
	}
	ss := m["steady_states"].(map[string]any)
	for _, k := range []string{"before", "after", "during"} {
		if _, ok := ss[k]; !ok {
			t.Errorf("steady_states has no %s", k)
		}
	}
	before := ss["before"].(map[string]any)
	if before["steady_state_met"] != true {
		t.Errorf("steady_state_met = %v", before["steady_state_met"])
	}
	probe := before["probes"].([]any)[0].(map[string]any)
	for _, k := range []string{"activity", "output", "status", "start", "end", "duration", "tolerance_met"} {
		if _, ok := probe[k]; !ok {
			t.Errorf("probe run has no %s: %v", k, probe)
		}
	}
	run := m["run"].([]any)[0].(map[string]any)
	if run["status"] != "succeeded" || m["status"] != "completed" {
		t.Errorf("statuses: run %v, journal %v", run["status"], m["status"])
	}
}

func noCheck(string, map[string]any, *Problems) {}

func TestMethodToleranceIsJudged(t *testing.T) {
	r := &Runner{Providers: map[string]Provider{"fake": &fake{}}}
	j := r.Run(context.Background(), experiment(t, "true", `{"type":"probe","name":"m","tolerance":5,"provider":{"type":"fake","out":4}}`))
	if j.Run[0].Status != RunFailed || j.Weft.Method != "failed: m" || j.Passed() {
		t.Errorf("run %+v method %s", j.Run[0], j.Weft.Method)
	}
}
