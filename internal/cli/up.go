package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/agent"
	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/pki"
	"github.com/weft-dev/weft/internal/plan"
	"github.com/weft-dev/weft/internal/spec"
)

// UpResult is what `weft up --json` prints.
type UpResult struct {
	Cluster     string        `json:"cluster"`
	Created     bool          `json:"created"` // the cluster did not exist before
	SpecChanged bool          `json:"spec_changed"`
	Changes     model.Changes `json:"changes"`
	Healthy     int           `json:"healthy"`
	Expected    int           `json:"expected"`
	Seconds     float64       `json:"seconds"`
}

func newUpCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create the cluster in the file, or converge it to the file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.loadFile()
			if err != nil {
				return err
			}
			res, err := up(cmd.Context(), g, c, timeout, !asJSON)
			if asJSON {
				_ = json.NewEncoder(g.stdout).Encode(res)
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "how long to wait for every service to become healthy")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func up(ctx context.Context, g *globals, c *spec.Cluster, timeout time.Duration, progress bool) (UpResult, error) {
	start := time.Now()
	res := UpResult{Cluster: c.Name}
	say := func(format string, args ...any) {
		if progress {
			fmt.Fprintf(g.stdout, format+"\n", args...)
		}
	}
	if os.Geteuid() != 0 {
		return res, &exitError{code: 1, err: errors.New("weft up builds network namespaces and needs root; run it with sudo")}
	}
	l := &lab.Lab{StateRoot: g.stateRoot, Log: g.logger()}
	existed, err := l.Exists(c.Name)
	if err != nil {
		return res, err
	}
	res.Created = !existed
	say("cluster %s: underlay (router + %d hosts in %d subnets)", c.Name, len(c.Hosts), len(c.Network.Subnets))
	if _, err := l.Ensure(ctx, c); err != nil {
		if !existed {
			// Never leave half a cluster behind.
			_, _ = l.Destroy(context.Background(), c.Name, true)
		}
		return res, fmt.Errorf("building the underlay: %w", err)
	}
	// The CA is made once, at the first up; later ups keep every
	// certificate that is still right.
	if _, err := pki.Ensure(g.stateRoot, c, time.Now()); err != nil {
		if !existed {
			_, _ = l.Destroy(context.Background(), c.Name, true)
		}
		return res, fmt.Errorf("making the cluster's certificates: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return res, fmt.Errorf("finding the weft binary: %w", err)
	}
	for _, h := range c.Hosts {
		if err := agent.WriteBootstrap(g.stateRoot, c, h.Name); err != nil {
			return res, err
		}
		args := []string{"agent", "--cluster", c.Name, "--host", h.Name, "--state-root", g.stateRoot}
		if _, err := l.StartAgent(ctx, c.Name, h.Name, exe, args); err != nil {
			return res, fmt.Errorf("starting the agent of %s: %w", h.Name, err)
		}
	}
	say("agents: starting %d (etcd members on %s)", len(c.Hosts), strings.Join(managerNames(c), ", "))
	client, err := waitAgents(ctx, g, c, 90*time.Second)
	if err != nil {
		return res, err
	}
	var ar api.ApplyResult
	err = retryStore(ctx, 15*time.Second, func() error {
		var err error
		ar, err = client.Apply(ctx, c)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("applying the cluster file: %w", err)
	}
	res.SpecChanged, res.Changes = ar.SpecChanged, ar.Changes
	say("changes: %d%s", ar.Changes.Count(), describeChanges(ar.Changes))
	for _, note := range ar.Weights {
		say("weights: %s", note)
	}

	ready, err := waitConverged(ctx, client, c, ar, timeout, say)
	res.Healthy, res.Expected = ready, len(ar.Planned)
	if err != nil {
		res.Seconds = time.Since(start).Seconds()
		return res, err
	}
	if err := startPublisher(ctx, g, c); err != nil {
		return res, err
	}
	for _, p := range c.Publish {
		say("published: http://%s -> %s", p.Listen, publishTarget(p))
	}
	res.Seconds = time.Since(start).Seconds()
	say("cluster %s is up in %.1fs: %d hosts, %d containers healthy", c.Name, res.Seconds, len(c.Hosts), ready)
	say("next: weft status -f %s | weft ps | weft exec SERVICE -- CMD | weft down", g.file)
	return res, nil
}

// waitConverged waits until the cluster shows exactly the planned
// containers, all healthy, and every rollout of the file's definitions has
// settled. A rollout that rolled back or paused is an error naming the
// service and why; so is the timeout.
func waitConverged(ctx context.Context, client *api.Client, c *spec.Cluster, ar api.ApplyResult, timeout time.Duration, say func(string, ...any)) (int, error) {
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
				return ready, &exitError{code: 1, err: fmt.Errorf("the update did not go through:\n  %s", strings.Join(failed, "\n  "))}
			}
			if st.Applied && converged && !st.Stale && len(rolling) == 0 {
				return ready, nil
			}
			if time.Now().After(deadline) {
				return ready, &exitError{code: 1, err: fmt.Errorf("not every service became healthy within %s:\n%s", timeout, notReady(st))}
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

func managerNames(c *spec.Cluster) []string {
	var out []string
	for _, h := range c.Managers() {
		out = append(out, h.Name)
	}
	return out
}

func describeChanges(ch model.Changes) string {
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

// retryStore repeats fn while the store is briefly unusable (an etcd leader
// election after a manager died), up to limit.
func retryStore(ctx context.Context, limit time.Duration, fn func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := fn()
		var final *exitError
		if err == nil || errors.As(err, &final) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
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

// waitAgents waits until every agent answers and is connected to the store,
// and returns a client of one of them.
func waitAgents(ctx context.Context, g *globals, c *spec.Cluster, limit time.Duration) (*api.Client, error) {
	deadline := time.Now().Add(limit)
	for {
		phases := map[string]string{}
		var ready *api.Client
		allReady := true
		for _, h := range c.Hosts {
			cl := api.NewClient(naming.AgentSocket(g.stateRoot, c.Name, h.Name))
			hctx, cancel := context.WithTimeout(ctx, time.Second)
			hh, err := cl.Health(hctx)
			cancel()
			switch {
			case err != nil:
				phases[h.Name] = "not answering"
				allReady = false
			case hh.Phase != agent.PhaseReady:
				phases[h.Name] = hh.Phase
				allReady = false
			default:
				phases[h.Name] = hh.Phase
				if ready == nil {
					ready = cl
				}
			}
		}
		if allReady && ready != nil {
			return ready, nil
		}
		if time.Now().After(deadline) {
			var lines []string
			for h, p := range phases {
				lines = append(lines, fmt.Sprintf("  %s: %s (log: %s)", h, p, naming.HostStateDir(g.stateRoot, c.Name, h)+"/agent.log"))
			}
			sort.Strings(lines)
			return nil, fmt.Errorf("agents not ready after %s:\n%s", limit, strings.Join(lines, "\n"))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func newDownCmd(g *globals) *cobra.Command {
	var keepVolumes bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove everything of the cluster: namespaces, links, processes, mounts, state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := g.clusterName()
			if err != nil {
				return err
			}
			l := &lab.Lab{StateRoot: g.stateRoot, Log: g.logger()}
			rm, err := l.Destroy(cmd.Context(), name, keepVolumes)
			if err != nil {
				return fmt.Errorf("removing cluster %s: %w", name, err)
			}
			fmt.Fprintf(g.stdout, "cluster %s removed: %d namespaces, %d processes\n", name, len(rm.Namespaces), rm.Processes)
			return nil
		},
	}
	cmd.Flags().BoolVar(&keepVolumes, "keep-volumes", false, "keep the volume directories")
	return cmd
}

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check a cluster file without touching anything",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := g.loadFile()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: cluster %s is valid: %d hosts, %d services, %d containers\n", g.file, c.Name, len(c.Hosts), len(c.Services), c.ContainerCount())
			return nil
		},
	}
}
