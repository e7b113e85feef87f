package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/plan"
	"github.com/weft-dev/weft/internal/spec"
)

// StatusReader is an agent asked for the cluster's status; *api.Client is one.
type StatusReader interface {
	Status(ctx context.Context) (api.Status, error)
}

// WaitConverged waits until the cluster shows exactly the planned
// containers, all healthy, and every rollout of the file's definitions has
// settled, saying each new count. A rollout that rolled back or paused is an
// error naming the service and why; so is the timeout.
func WaitConverged(ctx context.Context, client StatusReader, c *spec.Cluster, ar api.ApplyResult, timeout time.Duration, say func(string, ...any)) (int, error) {
	deadline := time.Now().Add(timeout)
	lastLine := ""
	ready := 0
	for {
		st, err := client.Status(ctx)
		if err == nil {
			var converged bool
			ready, converged = countReady(st, ar.Planned)
			line := fmt.Sprintf("containers: %d/%d healthy", ready, len(ar.Planned))
			rolling, failed := rolloutsOf(st, c, ar.Changes.Updated)
			if len(rolling) > 0 {
				line += "; rolling " + strings.Join(rolling, ", ")
			}
			if line != lastLine {
				say("%s", line)
				lastLine = line
			}
			// A stale answer (the agent could not read the store) is what
			// was, not what is: never take it for convergence.
			if st.Applied && !st.Stale && len(failed) > 0 && len(rolling) == 0 {
				return ready, fmt.Errorf("the update did not go through:\n  %s", strings.Join(failed, "\n  "))
			}
			if st.Applied && converged && !st.Stale && len(rolling) == 0 {
				return ready, nil
			}
			if time.Now().After(deadline) {
				return ready, fmt.Errorf("not every service became healthy within %s:\n%s", timeout, notReady(st))
			}
		} else if time.Now().After(deadline) {
			return ready, fmt.Errorf("reading status: %w", err)
		}
		select {
		case <-ctx.Done():
			return ready, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// rolloutsOf lists the services of c whose rollout towards the file's
// definition is still moving (or has not started yet though the apply
// changed it: updated), and those whose rollout rolled back or paused.
func rolloutsOf(st api.Status, c *spec.Cluster, updated []string) (rolling, failed []string) {
	byService := map[string]*api.RolloutStatus{}
	for _, ch := range st.Changes {
		byService[ch.Service] = ch.Rollout
	}
	for _, s := range c.Services {
		r, h := byService[s.Name], plan.DefHash(s)
		switch {
		case r == nil || r.To != h:
			if slices.Contains(updated, s.Name) {
				rolling = append(rolling, s.Name+" (starting)")
			}
		case r.State == model.RolloutRolledBack || r.State == model.RolloutPaused:
			failed = append(failed, fmt.Sprintf("service %s: the new definition is not running, the update %s; fix the file and run weft up again (weft status shows the rollout)", s.Name, r.Message))
		case r.State == model.RolloutRolling || r.State == model.RolloutRollingBack:
			rolling = append(rolling, fmt.Sprintf("%s %d/%d %s", s.Name, r.Updated, r.Replicas, r.State))
		}
	}
	return rolling, failed
}

// DescribeChanges is what an apply changes, as " (added ...; removed ...)"
// after its count; empty when nothing changes.
func DescribeChanges(ch model.Changes) string {
	var parts []string
	if len(ch.Added) > 0 {
		parts = append(parts, "added "+strings.Join(ch.Added, " "))
	}
	if len(ch.Removed) > 0 {
		parts = append(parts, "removed "+strings.Join(ch.Removed, " "))
	}
	if len(ch.Moved) > 0 {
		parts = append(parts, "moved "+strings.Join(ch.Moved, " "))
	}
	if len(ch.Updated) > 0 {
		parts = append(parts, "rolling update of "+strings.Join(ch.Updated, " "))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// countReady counts the planned containers that are healthy on their
// planned host, and says whether the cluster shows exactly the plan.
func countReady(st api.Status, planned map[string]string) (ready int, converged bool) {
	converged = len(st.Containers) == len(planned)
	for _, c := range st.Containers {
		host, ok := planned[c.Container]
		switch {
		case !ok || host != c.Host:
			converged = false
		case c.Ready():
			ready++
		default:
			converged = false
		}
	}
	return ready, converged
}

func notReady(st api.Status) string {
	var b strings.Builder
	for _, c := range st.Containers {
		if c.Ready() {
			continue
		}
		fmt.Fprintf(&b, "  %s on %s: state %s, health %s", c.Container, c.Host, c.State, c.Health)
		if c.Message != "" {
			fmt.Fprintf(&b, ": %s", c.Message)
		}
		b.WriteString("\n")
	}
	for _, h := range st.Hosts {
		if h.Agent != "up" {
			fmt.Fprintf(&b, "  host %s: agent %s\n", h.Name, h.Agent)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
