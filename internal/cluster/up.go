// Package cluster brings a cluster up and down on this machine and runs its
// publisher: it talks to the hosts through a provider.Provider and to the
// agents through their API, and leaves flags, printing and exit codes to
// internal/cli.
package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/agent"
	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/pki"
	"github.com/weft-dev/weft/internal/provider"
	"github.com/weft-dev/weft/internal/spec"
)

// UpResult is what `weft up --json` prints.
type UpResult struct {
	Cluster     string        `json:"cluster"`
	Created     bool          `json:"created"` // the cluster did not exist before
	SpecChanged bool          `json:"spec_changed"`
	Changes     model.Changes `json:"changes"`
	// HostChanges counts what the provider changed on the hosts, where it
	// counts them (ssh: files copied, units written, agents started).
	HostChanges int     `json:"host_changes"`
	Healthy     int     `json:"healthy"`
	Expected    int     `json:"expected"`
	Seconds     float64 `json:"seconds"`
}

// Env is what Up and Down work with.
type Env struct {
	StateRoot string
	Provider  provider.Provider
	// Agent reaches the agent of a host; nil: its API on the unix socket
	// under StateRoot.
	Agent func(cluster, host string) Agent
	// Say prints one line of progress; nil: nothing is printed.
	Say func(format string, args ...any)
}

func (e Env) say(format string, args ...any) {
	if e.Say != nil {
		e.Say(format, args...)
	}
}

// Up creates the cluster of c, or converges it to c: the provider makes the
// hosts, the certificates and the agents follow, the file is applied, and Up
// waits until every planned container is healthy (at most timeout) and the
// published ports accept. The result is filled as far as Up got.
func Up(ctx context.Context, env Env, c *spec.Cluster, timeout time.Duration) (UpResult, error) {
	start := time.Now()
	res := UpResult{Cluster: c.Name}
	p := env.Provider
	existed, err := p.Exists(c.Name)
	if err != nil {
		return res, err
	}
	res.Created = !existed
	if c.Provider == spec.ProviderSSH {
		env.say("cluster %s: checking %d servers over ssh", c.Name, len(c.Hosts))
	} else {
		env.say("cluster %s: underlay (router + %d hosts in %d subnets)", c.Name, len(c.Hosts), len(c.Network.Subnets))
	}
	if _, err := p.Ensure(ctx, c); err != nil {
		if !existed {
			// Never leave half a cluster behind.
			_, _ = p.Destroy(context.Background(), c.Name, true)
		}
		return res, fmt.Errorf("building the underlay: %w", err)
	}
	// The CA is made once, at the first up; later ups keep every
	// certificate that is still right.
	if _, err := pki.Ensure(env.StateRoot, c, time.Now()); err != nil {
		if !existed {
			_, _ = p.Destroy(context.Background(), c.Name, true)
		}
		return res, fmt.Errorf("making the cluster's certificates: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return res, fmt.Errorf("finding the weft binary: %w", err)
	}
	for _, h := range c.Hosts {
		if err := agent.WriteBootstrap(env.StateRoot, c, h.Name); err != nil {
			return res, err
		}
		args := []string{"agent", "--cluster", c.Name, "--host", h.Name, "--state-root", env.StateRoot}
		if _, err := p.StartAgent(ctx, c.Name, h.Name, exe, args); err != nil {
			return res, fmt.Errorf("starting the agent of %s: %w", h.Name, err)
		}
	}
	if cc, ok := p.(provider.ChangeCounter); ok {
		res.HostChanges = cc.Changes()
		env.say("hosts: %d changes", res.HostChanges)
	}
	env.say("agents: starting %d (etcd members on %s)", len(c.Hosts), strings.Join(managerNames(c), ", "))
	client, err := waitAgents(ctx, env, c, 90*time.Second)
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
	env.say("changes: %d%s", ar.Changes.Count(), DescribeChanges(ar.Changes))
	for _, note := range ar.Weights {
		env.say("weights: %s", note)
	}

	ready, err := WaitConverged(ctx, client, c, ar, timeout, env.say)
	res.Healthy, res.Expected = ready, len(ar.Planned)
	if err != nil {
		res.Seconds = time.Since(start).Seconds()
		return res, err
	}
	if err := StartPublisher(ctx, env.StateRoot, c); err != nil {
		return res, err
	}
	for _, p := range c.Publish {
		env.say("published: http://%s -> %s", p.Listen, publishTarget(p))
	}
	res.Seconds = time.Since(start).Seconds()
	env.say("cluster %s is up in %.1fs: %d hosts, %d containers healthy", c.Name, res.Seconds, len(c.Hosts), ready)
	return res, nil
}

func managerNames(c *spec.Cluster) []string {
	var out []string
	for _, h := range c.Managers() {
		out = append(out, h.Name)
	}
	return out
}
