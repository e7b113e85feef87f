// Package model holds the records weft keeps in its store and passes between
// the agent, the planner and the CLI. It is pure data.
package model

import (
	"net/netip"
	"time"
)

// Assignment is where one container runs and on which address. The leader
// writes it once; it never moves on re-apply unless the file moves it.
type Assignment struct {
	Container string     `json:"container"` // naming.ContainerName(service, index)
	Service   string     `json:"service"`
	Index     int        `json:"index"` // 1-based replica index
	Host      string     `json:"host"`
	IP        netip.Addr `json:"ip"`
	MAC       string     `json:"mac"` // naming.MACFromIP(IP).String()
	// Home is where placement put the container before the leader moved it
	// off a down host (rescheduling); empty while it runs where placed.
	Home string `json:"home,omitempty"`
	// Def is the hash of the service definition the container runs
	// (plan.DefHash); a rolling update changes it instance by instance.
	Def string `json:"def,omitempty"`
	// Draining is when the container left DNS and the gateways' endpoints
	// before being stopped or replaced; zero while it serves.
	Draining time.Time `json:"draining,omitzero"`
	// Surge marks an extra instance of a start-first update, beyond the
	// service's replicas, removed when the update ends.
	Surge bool `json:"surge,omitempty"`
}

// Changes is the difference between two sets of assignments.
type Changes struct {
	Added   []string `json:"added,omitempty"`   // containers that appear
	Removed []string `json:"removed,omitempty"` // containers that go
	Moved   []string `json:"moved,omitempty"`   // containers whose host or address changed
	Updated []string `json:"updated,omitempty"` // services whose definition changes: they roll out
}

// Count is the number of containers and services that change.
func (c Changes) Count() int { return len(c.Added) + len(c.Removed) + len(c.Moved) + len(c.Updated) }

// Container states as reported by the host's agent.
const (
	StateWaiting  = "waiting"  // dependencies not healthy yet
	StateStarting = "starting" // process being started
	StateRunning  = "running"
	StateBackoff  = "backoff" // exited, restart scheduled
	StateExited   = "exited"  // exited and the restart policy says stay down
	StateFailed   = "failed"  // could not be started
)

// Health values.
const (
	HealthNone      = "none" // no health check configured: running counts as healthy
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// ContainerStatus is what a host's agent reports about one of its containers.
type ContainerStatus struct {
	Container string     `json:"container"`
	Service   string     `json:"service"`
	Host      string     `json:"host"`
	IP        netip.Addr `json:"ip"`
	MAC       string     `json:"mac"`
	Netns     string     `json:"netns"`
	Pid       int        `json:"pid"`
	State     string     `json:"state"`
	Health    string     `json:"health"`
	Restarts  int        `json:"restarts"`
	Def       string     `json:"def,omitempty"`     // the definition it runs (Assignment.Def)
	Message   string     `json:"message,omitempty"` // why it is not healthy / last error
	Updated   time.Time  `json:"updated"`
}

// Ready reports whether the container counts as a healthy instance
// (DNS answers it, dependants may start).
func (s ContainerStatus) Ready() bool {
	return s.State == StateRunning && (s.Health == HealthHealthy || s.Health == HealthNone)
}

// HostRecord is a host's registration; it lives under a lease so a dead
// host's agent is seen as down.
type HostRecord struct {
	Name        string     `json:"name"`
	Subnet      string     `json:"subnet"`
	Address     netip.Addr `json:"address"`      // underlay
	OverlayAddr netip.Addr `json:"overlay_addr"` // the host's bridge address (DNS listens there)
	Netns       string     `json:"netns"`
	AgentPid    int        `json:"agent_pid"`
	Manager     bool       `json:"manager"`
	Started     time.Time  `json:"started"`
}
