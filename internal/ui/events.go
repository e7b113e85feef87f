package ui

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
)

// Kinds of events.
const (
	EventHost       = "host"       // a host's agent went down or came back
	EventRestart    = "restart"    // a container's process was started again
	EventState      = "state"      // a container changed state or fell unhealthy
	EventReschedule = "reschedule" // a container moved to another host
	EventAdded      = "added"      // a container appeared (scale up, new service)
	EventRemoved    = "removed"    // a container went away
	EventFailover   = "failover"   // a VIP moved to another holder
	EventScale      = "scale"      // a service's replicas changed
	EventRollout    = "rollout"    // a service's definition is rolling out
	EventFault      = "fault"      // a chaos fault was injected, or removed
	EventShift      = "shift"      // a traffic shift took a step, rolled back, was promoted
)

// Event is one thing that happened in the cluster.
type Event struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	Subject string    `json:"subject"` // host, container, VIP or service
	Text    string    `json:"text"`
}

// History is what the status itself remembers: each VIP's last failover,
// each service's last scale and rollout, with their own times, oldest
// first. The page starts with it.
func History(st api.Status) []Event {
	var out []Event
	for _, v := range st.VIPs {
		if f := v.LastFailover; f != nil {
			out = append(out, failoverEvent(v.Name, *f))
		}
	}
	for _, ch := range st.Changes {
		if s := ch.Scale; s != nil {
			out = append(out, scaleEvent(ch.Service, *s))
		}
		if r := ch.Rollout; r != nil {
			out = append(out, rolloutEvent(ch.Service, *r, r.Started))
		}
	}
	for _, f := range st.Faults {
		out = append(out, faultEvent(f, f.Created))
	}
	slices.SortStableFunc(out, func(x, y Event) int { return x.At.Compare(y.At) })
	return out
}

// Diff is what happened between two statuses, prev then cur, seen at now,
// in a stable order (hosts, containers by name, VIPs, services).
func Diff(prev, cur api.Status, now time.Time) []Event {
	var out []Event
	add := func(kind, subject, format string, args ...any) {
		out = append(out, Event{At: now, Kind: kind, Subject: subject, Text: fmt.Sprintf(format, args...)})
	}
	hosts := map[string]api.HostStatus{}
	for _, h := range prev.Hosts {
		hosts[h.Name] = h
	}
	for _, h := range cur.Hosts {
		old, ok := hosts[h.Name]
		if !ok || old.Agent == h.Agent {
			continue
		}
		if h.Agent == "up" {
			add(EventHost, h.Name, "%s is up again (agent registered)", h.Name)
		} else {
			add(EventHost, h.Name, "%s is DOWN (its agent is not registered)", h.Name)
		}
	}

	before := map[string]model.ContainerStatus{}
	for _, c := range prev.Containers {
		before[c.Container] = c
	}
	present := map[string]bool{}
	for _, c := range sortedContainers(cur.Containers) {
		present[c.Container] = true
		old, ok := before[c.Container]
		switch {
		case !ok:
			add(EventAdded, c.Container, "%s added on %s", c.Container, c.Host)
		case old.Host != c.Host:
			add(EventReschedule, c.Container, "%s moved %s → %s", c.Container, old.Host, c.Host)
		case c.Restarts > old.Restarts:
			add(EventRestart, c.Container, "%s restarted on %s (restarts: %d)", c.Container, c.Host, c.Restarts)
		case old.State != c.State:
			add(EventState, c.Container, "%s %s → %s%s", c.Container, old.State, c.State, because(c.Message))
		case c.Health == model.HealthUnhealthy && old.Health != c.Health:
			add(EventState, c.Container, "%s unhealthy%s", c.Container, because(c.Message))
		case old.Health == model.HealthUnhealthy && c.Ready():
			add(EventState, c.Container, "%s healthy again", c.Container)
		}
	}
	for _, c := range sortedContainers(prev.Containers) {
		if !present[c.Container] {
			add(EventRemoved, c.Container, "%s removed from %s", c.Container, c.Host)
		}
	}

	vips := map[string]api.VIPStatus{}
	for _, v := range prev.VIPs {
		vips[v.Name] = v
	}
	for _, v := range cur.VIPs {
		old, ok := vips[v.Name]
		if !ok {
			continue
		}
		switch {
		case v.LastFailover != nil && (old.LastFailover == nil || !old.LastFailover.At.Equal(v.LastFailover.At)):
			out = append(out, failoverEvent(v.Name, *v.LastFailover))
		case old.Holder != v.Holder && v.Holder == "":
			add(EventFailover, v.Name, "VIP %s has no holder (was %s)", v.Name, old.Holder)
		case old.Holder != v.Holder:
			add(EventFailover, v.Name, "VIP %s held by %s (was %s)", v.Name, v.Holder, orNobody(old.Holder))
		}
	}

	changes := map[string]api.ServiceChange{}
	for _, ch := range prev.Changes {
		changes[ch.Service] = ch
	}
	for _, ch := range cur.Changes {
		old := changes[ch.Service]
		if s := ch.Scale; s != nil && (old.Scale == nil || !old.Scale.At.Equal(s.At)) {
			out = append(out, scaleEvent(ch.Service, *s))
		}
		if r := ch.Rollout; r != nil && (old.Rollout == nil || old.Rollout.State != r.State || !old.Rollout.Started.Equal(r.Started) || old.Rollout.Updated != r.Updated) {
			out = append(out, rolloutEvent(ch.Service, *r, now))
		}
	}

	// Faults are diffed only when both statuses could read them (a status
	// without a store lists none).
	if prev.Faults != nil && cur.Faults != nil {
		faults := map[string]bool{}
		for _, f := range prev.Faults {
			faults[f.ID] = true
		}
		present := map[string]bool{}
		for _, f := range cur.Faults {
			present[f.ID] = true
			if !faults[f.ID] {
				out = append(out, faultEvent(f, now))
			}
		}
		for _, f := range prev.Faults {
			if !present[f.ID] {
				add(EventFault, f.ID, "chaos fault %s on %s removed", f.Kind, orUnnamed(f.Target))
			}
		}
	}
	return out
}

// ShiftEvents are the lines of the shifts' own histories (steps taken,
// leader changes, the end) that prev did not have yet, oldest first; with
// prev nil, all of them.
func ShiftEvents(prev, cur map[string]model.Shift) []Event {
	seen := map[string]bool{}
	key := func(id string, e model.Event) string { return id + "\x00" + e.At.String() + "\x00" + e.Message }
	for _, sh := range prev {
		for _, e := range sh.Events {
			seen[key(sh.ID, e)] = true
		}
	}
	var out []Event
	for _, route := range slices.Sorted(maps.Keys(cur)) {
		sh := cur[route]
		for _, e := range sh.Events {
			if !seen[key(sh.ID, e)] {
				out = append(out, Event{At: e.At, Kind: EventShift, Subject: route, Text: fmt.Sprintf("shift of %s to %s: %s", route, sh.To, e.Message)})
			}
		}
	}
	slices.SortStableFunc(out, func(x, y Event) int { return x.At.Compare(y.At) })
	return out
}

func faultEvent(f api.FaultStatus, at time.Time) Event {
	return Event{At: at, Kind: EventFault, Subject: f.ID,
		Text: fmt.Sprintf("chaos fault %s on %s injected (%s), until %s", f.Kind, orUnnamed(f.Target), f.Mechanism, f.Expires.UTC().Format("15:04:05"))}
}

func orUnnamed(target string) string {
	if target == "" {
		return "an unnamed target"
	}
	return target
}

func failoverEvent(vip string, f api.VIPFailover) Event {
	return Event{At: f.At, Kind: EventFailover, Subject: vip,
		Text: fmt.Sprintf("VIP %s failed over %s → %s (%s, %.0f ms)", vip, orNobody(f.From), f.To, f.Cause, f.DurationMS)}
}

func scaleEvent(service string, s model.Scale) Event {
	return Event{At: s.At, Kind: EventScale, Subject: service,
		Text: fmt.Sprintf("%s scaled %d → %d by %s", service, s.From, s.To, s.By)}
}

func rolloutEvent(service string, r api.RolloutStatus, at time.Time) Event {
	return Event{At: at, Kind: EventRollout, Subject: service,
		Text: fmt.Sprintf("%s update %s: %d/%d on the new definition%s", service, r.State, r.Updated, r.Replicas, because(r.Message))}
}

func because(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

func orNobody(host string) string {
	if host == "" {
		return "nobody"
	}
	return host
}

func sortedContainers(cs []model.ContainerStatus) []model.ContainerStatus {
	out := slices.Clone(cs)
	slices.SortFunc(out, func(x, y model.ContainerStatus) int { return cmp.Compare(x.Container, y.Container) })
	return out
}

// maxEvents is how many events the page keeps.
const maxEvents = 100

// prepend puts fresh events (oldest first) before the kept ones (newest
// first), keeping at most maxEvents.
func prepend(kept, fresh []Event) []Event {
	out := make([]Event, 0, len(kept)+len(fresh))
	for i := len(fresh) - 1; i >= 0; i-- {
		out = append(out, fresh[i])
	}
	out = append(out, kept...)
	if len(out) > maxEvents {
		out = out[:maxEvents]
	}
	return out
}
