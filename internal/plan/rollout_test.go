package plan

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// sim runs the leader's passes (PlaceSurge, Roll) against fake agents: a
// container on a definition that "works" is healthy startup after its
// agent saw it, one on a broken definition exits at once and restarts.
type sim struct {
	t       *testing.T
	now     time.Time
	assign  map[string]model.Assignment
	status  map[string]model.ContainerStatus
	rolls   map[string]model.Rollout
	broken  map[string]bool // definitions whose process exits at once
	startup time.Duration
	// started is when each container's current process started.
	started map[string]time.Time
	// everDef is every definition each container ran.
	everDef map[string]map[string]bool
	// drainedFor is how long each removed or replaced container was
	// marked draining before it went or switched.
	drainedFor map[string]time.Duration
}

func newSim(t *testing.T) *sim {
	return &sim{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), assign: map[string]model.Assignment{},
		status: map[string]model.ContainerStatus{}, rolls: map[string]model.Rollout{}, broken: map[string]bool{},
		startup: 300 * time.Millisecond, started: map[string]time.Time{}, everDef: map[string]map[string]bool{},
		drainedFor: map[string]time.Duration{}}
}

// pass runs one leader pass and lets the agents react, then moves the
// clock on by step.
func (s *sim) pass(c *spec.Cluster, step time.Duration) {
	s.t.Helper()
	placed, err := PlaceSurge(c, s.assign, Surge(c, s.rolls))
	if err != nil {
		s.t.Fatal(err)
	}
	next, rolls, _ := Roll(c, s.assign, placed, s.status, s.rolls, s.now)
	for name, old := range s.assign {
		n, kept := next[name]
		if !old.Draining.IsZero() && (!kept || n.Def != old.Def) {
			s.drainedFor[name] = s.now.Sub(old.Draining)
		}
	}
	s.assign, s.rolls = next, rolls
	for name := range s.status {
		if _, ok := s.assign[name]; !ok {
			delete(s.status, name)
			delete(s.started, name)
		}
	}
	for name, as := range s.assign {
		st, ok := s.status[name]
		if !ok || st.Def != as.Def {
			s.started[name] = s.now
			// As the agent reports a process being started: its health
			// is "unhealthy" until it runs (agent.startRun).
			st = model.ContainerStatus{Container: name, Service: as.Service, Host: as.Host, IP: as.IP, Def: as.Def,
				State: model.StateStarting, Health: model.HealthUnhealthy, Updated: s.now}
			if s.everDef[name] == nil {
				s.everDef[name] = map[string]bool{}
			}
			s.everDef[name][as.Def] = true
		}
		switch {
		case s.broken[as.Def] && st.State != model.StateBackoff:
			st.State, st.Health, st.Restarts, st.Message, st.Updated = model.StateBackoff, model.HealthUnhealthy, 1, "process exited with status 2", s.now
		case !s.broken[as.Def] && st.Health != model.HealthHealthy && s.now.Sub(s.started[name]) >= s.startup:
			st.State, st.Health, st.Updated = model.StateRunning, model.HealthHealthy, s.now
		}
		s.status[name] = st
	}
	s.now = s.now.Add(step)
}

// serving counts the instances of service the DNS would answer: placed,
// not draining, reported ready on the definition they are assigned.
func (s *sim) serving(service string) int {
	n := 0
	for name, as := range s.assign {
		st, ok := s.status[name]
		if as.Service == service && as.Draining.IsZero() && ok && st.Def == as.Def && st.Ready() {
			n++
		}
	}
	return n
}

func (s *sim) defs(service string) map[string]string {
	out := map[string]string{}
	for name, as := range s.assign {
		if as.Service == service {
			out[name] = as.Def
		}
	}
	return out
}

// run passes until the service's rollout settles, checking min serving
// instances after every pass, and fails after limit of simulated time.
func (s *sim) run(c *spec.Cluster, service string, minServing int, limit time.Duration) model.Rollout {
	s.t.Helper()
	end := s.now.Add(limit)
	for s.now.Before(end) {
		s.pass(c, 100*time.Millisecond)
		if got := s.serving(service); got < minServing {
			s.t.Fatalf("at %s: %d instances of %s serving, want at least %d; assignments %v", s.now.Format("15:04:05.0"), got, service, minServing, s.defs(service))
		}
		r := s.rolls[service]
		if r.Settled() && !hasExtra(s.assign, service) {
			return r
		}
	}
	s.t.Fatalf("rollout of %s not settled after %s: %+v; assignments %v", service, limit, s.rolls[service], s.defs(service))
	return model.Rollout{}
}

func hasExtra(assign map[string]model.Assignment, service string) bool {
	for _, as := range assign {
		if as.Service == service && (as.Surge || !as.Draining.IsZero()) {
			return true
		}
	}
	return false
}

const rollExample = `version: 1
name: roll
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a}
  - {name: host2, subnet: b}
services:
  web:
    command: [./hello, COMMAND]
    replicas: REPLICAS
    port: 8080
    health: {http: /health}
    update: UPDATE
  db:
    command: [./db]
    ip: 10.10.0.9
    env: {V: "DBV"}
    port: 5432
`

func rollCluster(t *testing.T, command string, replicas int, update, dbv string) *spec.Cluster {
	t.Helper()
	return parse(t, strings.NewReplacer("COMMAND", command, "REPLICAS", fmt.Sprint(replicas), "UPDATE", update, "DBV", dbv).Replace(rollExample))
}

// settle brings a cluster up in the sim and returns it.
func settle(t *testing.T, s *sim, c *spec.Cluster) {
	t.Helper()
	for range 20 {
		s.pass(c, 100*time.Millisecond)
	}
	for _, svc := range c.Services {
		if got := s.serving(svc.Name); got != svc.Replicas {
			t.Fatalf("after bringing up: %d instances of %s serving, want %d", got, svc.Name, svc.Replicas)
		}
	}
}

func TestDefHashIgnoresPlacement(t *testing.T) {
	a := rollCluster(t, "v1", 3, "{}", "1")
	b := rollCluster(t, "v1", 5, "{parallelism: 2, delay: 3s}", "1")
	w1, _ := a.ServiceByName("web")
	w2, _ := b.ServiceByName("web")
	if DefHash(w1) != DefHash(w2) {
		t.Errorf("replicas and update changed the definition's hash")
	}
	w3, _ := rollCluster(t, "v2", 3, "{}", "1").ServiceByName("web")
	if DefHash(w1) == DefHash(w3) {
		t.Errorf("a new command kept the definition's hash")
	}
}

func TestRollout(t *testing.T) {
	tests := []struct {
		name       string
		update     string
		replicas   int
		broken     bool
		minServing int // instances that must serve throughout
		wantState  string
	}{
		{"start-first keeps capacity", "{monitor: 1s}", 3, false, 3, model.RolloutCompleted},
		{"start-first two at a time with a delay", "{monitor: 1s, parallelism: 2, delay: 2s}", 4, false, 4, model.RolloutCompleted},
		{"stop-first loses one instance at a time", "{monitor: 1s, order: stop-first}", 3, false, 2, model.RolloutCompleted},
		{"broken start-first rolls back, old instances untouched", "{monitor: 1s}", 3, true, 3, model.RolloutRolledBack},
		{"broken stop-first rolls back", "{monitor: 1s, order: stop-first}", 3, true, 2, model.RolloutRolledBack},
		{"broken with pause stops", "{monitor: 1s, failure_action: pause}", 3, true, 3, model.RolloutPaused},
		{"broken with continue goes on (stop-first: every instance ends up failed)", "{monitor: 1s, order: stop-first, failure_action: continue}", 2, true, 0, model.RolloutCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t)
			old := rollCluster(t, "v1", tt.replicas, tt.update, "1")
			settle(t, s, old)
			oldDef := s.rolls["web"].To
			before := maps.Clone(s.started)
			next := rollCluster(t, "v2", tt.replicas, tt.update, "1")
			w, _ := next.ServiceByName("web")
			if tt.broken {
				s.broken[DefHash(w)] = true
			}
			var r model.Rollout
			if tt.wantState == model.RolloutPaused {
				for range 100 {
					s.pass(next, 100*time.Millisecond)
				}
				r = s.rolls["web"]
			} else {
				r = s.run(next, "web", tt.minServing, 5*time.Minute)
			}
			if r.State != tt.wantState {
				t.Fatalf("rollout ended %s (%s), want %s", r.State, r.Message, tt.wantState)
			}
			want := DefHash(w)
			if tt.broken && tt.wantState == model.RolloutRolledBack {
				want = oldDef
			}
			for name, def := range s.defs("web") {
				if tt.wantState != model.RolloutPaused && def != want {
					t.Errorf("%s runs %s, want %s", name, def, want)
				}
			}
			if tt.wantState != model.RolloutPaused && len(s.defs("web")) != tt.replicas {
				t.Errorf("%d web containers at the end, want %d: %v", len(s.defs("web")), tt.replicas, s.defs("web"))
			}
			if tt.broken {
				if r.Message == "" || len(r.Failed) == 0 {
					t.Errorf("a failed rollout says no why: %+v", r)
				}
				if _, kept := r.Defs[oldDef]; !kept && tt.wantState != model.RolloutCompleted {
					t.Errorf("the previous definition is not kept in the record")
				}
			}
			if tt.broken && tt.wantState != model.RolloutCompleted && tt.update != "{monitor: 1s, order: stop-first}" {
				for i := 1; i <= tt.replicas; i++ {
					name := fmt.Sprintf("web-%d", i)
					if !s.started[name].Equal(before[name]) || len(s.everDef[name]) != 1 {
						t.Errorf("%s was restarted by a start-first update that failed on its extra instance", name)
					}
				}
			}
			for name, d := range s.drainedFor {
				if d < DrainWait {
					t.Errorf("%s was drained for %s only, want %s", name, d, DrainWait)
				}
			}
			// The pinned db never moved.
			if s.rolls["db"].From != "" {
				t.Errorf("db rolled: %+v", s.rolls["db"])
			}
			// Nothing more happens on further passes.
			settled := maps.Clone(s.assign)
			for range 30 {
				s.pass(next, 100*time.Millisecond)
			}
			if tt.wantState != model.RolloutPaused && !maps.EqualFunc(settled, s.assign, func(x, y model.Assignment) bool { return x == y }) {
				t.Errorf("assignments still change after the rollout settled")
			}
		})
	}
}

func TestScaleDrainsBeforeRemoving(t *testing.T) {
	s := newSim(t)
	settle(t, s, rollCluster(t, "v1", 5, "{}", "1"))
	one := rollCluster(t, "v1", 1, "{}", "1")
	s.pass(one, 0)
	draining := 0
	for _, as := range s.assign {
		if as.Service == "web" && !as.Draining.IsZero() {
			draining++
		}
	}
	if draining != 4 || s.serving("web") != 1 {
		t.Fatalf("scaling 5 -> 1: %d draining, %d serving; want 4 draining (kept, out of DNS) and 1 serving", draining, s.serving("web"))
	}
	s.run(one, "web", 1, time.Minute)
	if len(s.defs("web")) != 1 {
		t.Fatalf("after the drain: %v, want web-1 alone", s.defs("web"))
	}
	for name, d := range s.drainedFor {
		if d < DrainWait {
			t.Errorf("%s removed after %s of drain, want %s", name, d, DrainWait)
		}
	}
	// A drained address is not handed out while its container still runs.
	seen := map[string]string{}
	for name, as := range s.assign {
		if other, dup := seen[as.IP.String()]; dup {
			t.Errorf("%s and %s share %s", name, other, as.IP)
		}
		seen[as.IP.String()] = name
	}
}

func TestDrainingAddressNotReused(t *testing.T) {
	s := newSim(t)
	settle(t, s, rollCluster(t, "v1", 3, "{}", "1"))
	ip3 := s.assign["web-3"].IP
	s.pass(rollCluster(t, "v1", 2, "{}", "1"), 0) // web-3 drains
	c := parse(t, strings.Replace(strings.NewReplacer("COMMAND", "v1", "REPLICAS", "2", "UPDATE", "{}", "DBV", "1").Replace(rollExample),
		"services:\n", "services:\n  api:\n    command: [./api]\n", 1))
	placed, err := PlaceSurge(c, s.assign, nil)
	if err != nil {
		t.Fatal(err)
	}
	if placed["api-1"].IP == ip3 {
		t.Fatalf("api-1 got %s while web-3 still drains on it", ip3)
	}
}

func TestRolloutRecordRestartsOnNewFile(t *testing.T) {
	s := newSim(t)
	settle(t, s, rollCluster(t, "v1", 2, "{monitor: 1s}", "1"))
	first := s.rolls["web"]
	if first.From != "" || first.State != model.RolloutCompleted {
		t.Fatalf("first definition: %+v, want completed with no From", first)
	}
	v2 := rollCluster(t, "v2", 2, "{monitor: 1s}", "1")
	w2, _ := v2.ServiceByName("web")
	s.broken[DefHash(w2)] = true
	r := s.run(v2, "web", 2, 2*time.Minute)
	if r.State != model.RolloutRolledBack {
		t.Fatalf("state %s", r.State)
	}
	// The same broken file again: nothing starts.
	for range 30 {
		s.pass(v2, 100*time.Millisecond)
	}
	if s.rolls["web"].State != model.RolloutRolledBack || hasExtra(s.assign, "web") {
		t.Fatalf("re-applying the rolled back file moved something: %+v", s.rolls["web"])
	}
	// The working file again: settles at once, nothing restarts.
	before := maps.Clone(s.started)
	v1 := rollCluster(t, "v1", 2, "{monitor: 1s}", "1")
	s.pass(v1, 100*time.Millisecond)
	if st := s.rolls["web"].State; st != model.RolloutCompleted {
		t.Fatalf("back to the working file: %s", st)
	}
	for name, at := range before {
		if !s.started[name].Equal(at) {
			t.Errorf("%s restarted when the file went back to what runs", name)
		}
	}
}

func TestRollbackAfterPauseGoesToTheLastGoodDefinition(t *testing.T) {
	s := newSim(t)
	upd := "{monitor: 1s, order: stop-first, failure_action: pause}"
	settle(t, s, rollCluster(t, "v1", 2, upd, "1"))
	good := s.rolls["web"].To
	v2 := rollCluster(t, "v2", 2, upd, "1")
	w2, _ := v2.ServiceByName("web")
	s.broken[DefHash(w2)] = true
	for range 100 {
		s.pass(v2, 100*time.Millisecond)
	}
	if st := s.rolls["web"].State; st != model.RolloutPaused {
		t.Fatalf("v2 rollout %s, want paused", st)
	}
	// A new file, broken too, with rollback: it goes back to v1, not to
	// the paused v2.
	upd = "{monitor: 1s, order: stop-first}"
	v3 := rollCluster(t, "v3", 2, upd, "1")
	w3, _ := v3.ServiceByName("web")
	s.broken[DefHash(w3)] = true
	r := s.run(v3, "web", 0, 5*time.Minute)
	if r.State != model.RolloutRolledBack || r.From != good {
		t.Fatalf("v3 rollout %s from %s, want rolled back to %s", r.State, r.From, good)
	}
	for name, def := range s.defs("web") {
		if def != good {
			t.Errorf("%s runs %s, want the last good %s", name, def, good)
		}
	}
}
