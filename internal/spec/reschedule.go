package spec

import (
	"fmt"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Rescheduling: when a host has been down for a service's reschedule_after,
// the leader moves the service's containers to live hosts, keeping their
// names, addresses and MACs. A service with volumes stays tied to its host
// (its data is there) unless it says `reschedule: true`.
const (
	// DefaultRescheduleAfter is the cluster-wide default of reschedule_after.
	DefaultRescheduleAfter = 5 * time.Second
	// MinRescheduleAfter keeps a host that misses one lease renewal (about
	// 2s) from losing its containers to a blip.
	MinRescheduleAfter = time.Second
	// MaxRescheduleAfter bounds the wait; longer is "never" in practice,
	// which `reschedule: false` says plainly.
	MaxRescheduleAfter = 24 * time.Hour
)

// Reschedules reports whether the service's containers move off a down
// host: the file's `reschedule`, or by default true unless it has volumes.
func (s Service) Reschedules() bool {
	if s.Reschedule != nil {
		return *s.Reschedule
	}
	return len(s.Volumes) == 0
}

func (s *Service) applyRescheduleDefaults(clusterDefault Duration) {
	if s.Reschedule == nil {
		v := len(s.Volumes) == 0
		s.Reschedule = &v
	}
	if s.RescheduleAfter.Duration == 0 {
		s.RescheduleAfter = clusterDefault
	}
}

func (c *Cluster) validateReschedule(ps *Problems) {
	checkRescheduleAfter(ps, "reschedule_after", c.RescheduleAfter.Duration)
	for _, s := range c.Services {
		checkRescheduleAfter(ps, "services."+s.Name+".reschedule_after", s.RescheduleAfter.Duration)
	}
}

func checkRescheduleAfter(ps *Problems, field string, d time.Duration) {
	switch {
	case d == 0:
		// Only a Cluster that skipped ApplyDefaults gets here; Parse refuses a written 0.
		ps.add(field, d, "missing", fmt.Sprintf("leave it out (%s) or write a duration like 5s", DefaultRescheduleAfter))
	case d < MinRescheduleAfter || d > MaxRescheduleAfter:
		ps.add(field, d, fmt.Sprintf("outside %s..%s: a shorter wait would move containers off a host that only missed a lease renewal", MinRescheduleAfter, MaxRescheduleAfter),
			"write a duration from 1s to 24h, e.g. 5s; to never move the service write `reschedule: false`")
	}
}

// rescheduleAfter reads a reschedule_after duration; a written 0 is refused
// here because after decoding it could not be told from an absent key.
func (d *decoder) rescheduleAfter(n *yaml.Node, path string) Duration {
	v := d.duration(n, path)
	if d.undecodable[path] {
		return v
	}
	if s := resolve(n); !isNull(s) && v.Duration == 0 {
		d.fail(s, path, s.Value, "0 would move containers the moment their host misses one lease renewal",
			"write a duration from 1s to 24h, e.g. 5s, or leave it out; to never move the service write `reschedule: false`")
	}
	return v
}

// boolean reads true/false (YAML 1.2 spellings only: true, false).
func (d *decoder) boolean(n *yaml.Node, path string) *bool {
	s, ok := d.scalar(n, path)
	if !ok || isNull(s) {
		return nil
	}
	v, err := strconv.ParseBool(s.Value)
	if err != nil || (s.Value != "true" && s.Value != "false") {
		d.fail(s, path, s.Value, "must be true or false", "write `true` or `false`")
		return nil
	}
	return &v
}
