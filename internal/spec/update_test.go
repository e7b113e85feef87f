package spec

import (
	"testing"
	"time"
)

func TestUpdateDefaults(t *testing.T) {
	text := edit(t, base, "    command: [./db]\n", "    command: [./db]\n    volumes: [{name: data, path: /data}]\n")
	c, err := Parse([]byte(text), "/srv/lab")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Services {
		if s.StopGrace.Duration != DefaultStopGrace {
			t.Errorf("%s: stop_grace %s, want %s", s.Name, s.StopGrace, DefaultStopGrace)
		}
		u := s.Update
		if u == nil || u.Parallelism != 1 || u.Monitor.Duration != DefaultMonitor || u.FailureAction != FailureRollback || u.MaxFailureRatio != 0 {
			t.Fatalf("%s: update defaults %+v", s.Name, u)
		}
		want := OrderStartFirst
		if s.IP.IsValid() || len(s.Volumes) > 0 {
			want = OrderStopFirst
		}
		if u.Order != want {
			t.Errorf("%s (ip %v, %d volumes): order %s, want %s", s.Name, s.IP, len(s.Volumes), u.Order, want)
		}
	}
}

func TestUpdateWritten(t *testing.T) {
	text := edit(t, base, "    command: [./db]\n", "    command: [./db]\n    stop_grace: 30s\n    update: {parallelism: 2, delay: 3s, order: start-first, monitor: 1s, failure_action: pause, max_failure_ratio: 0.5}\n")
	c, err := Parse([]byte(text), "/srv/lab")
	if err != nil {
		t.Fatal(err)
	}
	db, _ := c.ServiceByName("db")
	u := db.Update
	if db.StopGrace.Duration != 30*time.Second || u.Parallelism != 2 || u.Delay.Duration != 3*time.Second || u.Order != OrderStartFirst ||
		u.Monitor.Duration != time.Second || u.FailureAction != FailurePause || u.MaxFailureRatio != 0.5 {
		t.Errorf("written update not kept: grace %s, %+v", db.StopGrace, u)
	}
}

func TestUpdateRefusals(t *testing.T) {
	svc := func(name, line string) []string {
		return []string{"    command: [./" + name + "]\n", "    command: [./" + name + "]\n    " + line + "\n"}
	}
	cases := []struct {
		name, field, fragment string
		edits                 []string
	}{
		{"zero grace", "services.db.stop_grace", "leave the field out", svc("db", "stop_grace: 0")},
		{"long grace", "services.db.stop_grace", "SIGTERM", svc("db", "stop_grace: 11m")},
		{"zero parallelism", "services.db.update.parallelism", "1 or more", svc("db", "update: {parallelism: 0}")},
		{"negative parallelism", "services.db.update.parallelism", "1 or more", svc("db", "update: {parallelism: -1}")},
		{"bad order", "services.db.update.order", "start-first", svc("db", "update: {order: blue-green}")},
		{"start-first with a pinned ip", "services.api.update.order", "stop-first", svc("api", "ip: 10.10.0.5\n    update: {order: start-first}")},
		{"zero monitor", "services.db.update.monitor", "leave the field out", svc("db", "update: {monitor: 0s}")},
		{"long delay", "services.db.update.delay", "between batches", svc("db", "update: {delay: 2h}")},
		{"bad action", "services.db.update.failure_action", "rollback, pause or continue", svc("db", "update: {failure_action: retry}")},
		{"ratio above 1", "services.db.update.max_failure_ratio", "from 0 to 1", svc("db", "update: {max_failure_ratio: 2}")},
		{"misspelt", "services.db.update.paralelism", "did you mean `parallelism`?", svc("db", "update: {paralelism: 2}")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantOneProblem(t, edit(t, base, tc.edits...), tc.field, tc.fragment)
		})
	}
}
