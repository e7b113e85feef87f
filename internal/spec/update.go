package spec

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Changing a running service: `stop_grace` is how long a removed or
// replaced instance gets between its stop signal and SIGKILL, after it has
// been drained (out of DNS and every gateway's endpoints). `update:` says
// how a change of the service's definition rolls out, with Docker Swarm's
// knobs; see docs/cluster-file.md and docs/changes.md.
const (
	DefaultStopGrace = 10 * time.Second
	MaxStopGrace     = 10 * time.Minute
	DefaultMonitor   = 5 * time.Second
	MaxMonitor       = time.Hour
	MaxUpdateDelay   = time.Hour
)

// Update orders.
const (
	OrderStartFirst = "start-first" // start the new instance, then drain and stop an old one: keeps capacity
	OrderStopFirst  = "stop-first"  // drain and stop an old instance, then start the new one in its place
)

// Failure actions of an update.
const (
	FailureRollback = "rollback"
	FailurePause    = "pause"
	FailureContinue = "continue"
)

// Update is a service's `update:` section. ApplyDefaults fills it, so a
// parsed service always has one.
type Update struct {
	Parallelism int      `json:"parallelism"` // instances replaced at a time, default 1
	Delay       Duration `json:"delay"`       // wait between batches, default 0
	// Order: start-first (default) or stop-first (the default, and the only
	// choice, for a service with a pinned ip; the default with volumes).
	Order string `json:"order"`
	// Monitor is how long a new instance must stay healthy before it counts
	// as updated, default 5s.
	Monitor         Duration `json:"monitor"`
	FailureAction   string   `json:"failure_action"`    // rollback (default) | pause | continue
	MaxFailureRatio float64  `json:"max_failure_ratio"` // fraction of instances that may fail before failure_action, default 0
}

func (d *decoder) update(n *yaml.Node, path string) *Update {
	u := &Update{}
	d.mapping(n, path, fieldReaders{
		"parallelism":       func(v *yaml.Node, p string) { u.Parallelism = d.integer(v, p) },
		"delay":             func(v *yaml.Node, p string) { u.Delay = d.duration(v, p) },
		"order":             func(v *yaml.Node, p string) { u.Order = d.str(v, p) },
		"monitor":           func(v *yaml.Node, p string) { u.Monitor = d.duration(v, p) },
		"failure_action":    func(v *yaml.Node, p string) { u.FailureAction = d.str(v, p) },
		"max_failure_ratio": func(v *yaml.Node, p string) { u.MaxFailureRatio = d.ratio(v, p) },
	})
	return u
}

// ratio reads a number from 0 to 1 (update.max_failure_ratio).
func (d *decoder) ratio(n *yaml.Node, path string) float64 {
	if v := d.unitInterval(n, path, "must be a fraction from 0 to 1", "write e.g. 0.2 to let one instance in five fail before failure_action, 0 (the default) for none"); v != nil {
		return *v
	}
	return 0
}

// pinsInstances says whether a second instance of the service cannot run
// beside the first one: a pinned address, or volumes (a new instance would
// start on empty data).
func (s Service) pinsInstances() bool { return s.IP.IsValid() || len(s.Volumes) > 0 }

func (s *Service) applyUpdateDefaults() {
	if s.StopGrace.Duration == 0 {
		s.StopGrace.Duration = DefaultStopGrace
	}
	if s.Update == nil {
		s.Update = &Update{}
	}
	u := s.Update
	if u.Parallelism == 0 {
		u.Parallelism = 1
	}
	if u.Order == "" {
		u.Order = OrderStartFirst
		if s.pinsInstances() {
			u.Order = OrderStopFirst
		}
	}
	if u.Monitor.Duration == 0 {
		u.Monitor.Duration = DefaultMonitor
	}
	if u.FailureAction == "" {
		u.FailureAction = FailureRollback
	}
}

func validateUpdate(ps *Problems, field string, s Service) {
	if g := s.StopGrace.Duration; g < 0 || g > MaxStopGrace {
		ps.add(field+".stop_grace", s.StopGrace, fmt.Sprintf("outside 0s..%s", MaxStopGrace),
			"write how long the service may take to exit after SIGTERM, e.g. 10s")
	}
	u := s.Update
	if u == nil {
		return
	}
	f := field + ".update"
	if u.Parallelism < 1 {
		ps.add(f+".parallelism", u.Parallelism, "must be 1 or more", "write how many instances to replace at a time, e.g. 1")
	}
	if u.Delay.Duration < 0 || u.Delay.Duration > MaxUpdateDelay {
		ps.add(f+".delay", u.Delay, fmt.Sprintf("outside 0s..%s", MaxUpdateDelay), "write the wait between batches, e.g. 2s")
	}
	switch u.Order {
	case OrderStartFirst:
		if s.IP.IsValid() {
			ps.add(f+".order", u.Order, "a service with a pinned ip cannot run a new instance beside the old one (one address)",
				"write `order: stop-first`, or drop the service's ip")
		}
	case OrderStopFirst:
	default:
		ps.add(f+".order", u.Order, "unknown order", "use start-first (keeps capacity) or stop-first")
	}
	if u.Monitor.Duration < 0 || u.Monitor.Duration > MaxMonitor {
		ps.add(f+".monitor", u.Monitor, fmt.Sprintf("outside 0s..%s", MaxMonitor), "write how long a new instance must stay healthy, e.g. 5s")
	}
	switch u.FailureAction {
	case FailureRollback, FailurePause, FailureContinue:
	default:
		ps.add(f+".failure_action", u.FailureAction, "unknown failure action", "use rollback, pause or continue")
	}
}
