package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/agent"
	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/provider"
	"github.com/weft-dev/weft/internal/spec"
)

// Agent is what the bring-up asks of one agent; *api.Client is one.
type Agent interface {
	Health(ctx context.Context) (api.Health, error)
	Apply(ctx context.Context, c *spec.Cluster) (api.ApplyResult, error)
	StatusReader
}

// agent returns how to reach the agent of host.
func (e Env) agent(cluster, host string) Agent {
	if e.Agent != nil {
		return e.Agent(cluster, host)
	}
	if d, ok := e.Provider.(provider.AgentDialer); ok {
		return dialAgent(d, cluster, host)
	}
	return api.NewClient(naming.AgentSocket(e.StateRoot, cluster, host))
}

// waitAgents waits until every agent answers and is connected to the store,
// and returns one of them.
func waitAgents(ctx context.Context, env Env, c *spec.Cluster, limit time.Duration) (Agent, error) {
	deadline := time.Now().Add(limit)
	for {
		phases := map[string]string{}
		var ready Agent
		allReady := true
		for _, h := range c.Hosts {
			cl := env.agent(c.Name, h.Name)
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
				lines = append(lines, fmt.Sprintf("  %s: %s (log: %s)", h, p, naming.HostStateDir(env.StateRoot, c.Name, h)+"/agent.log"))
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

// anyAgent returns a client of the first agent of the cluster that answers
// with a usable store: status works as long as one agent does.
func anyAgent(ctx context.Context, stateRoot, cluster string) (*api.Client, error) {
	socks, _ := filepath.Glob(filepath.Join(naming.StateDir(stateRoot, cluster), "hosts", "*", "agent.sock"))
	if len(socks) == 0 {
		return nil, fmt.Errorf("cluster %s does not exist on this machine (start it with `weft up`)", cluster)
	}
	sort.Strings(socks)
	for _, s := range socks {
		cl := api.NewClient(s)
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		h, err := cl.Health(hctx)
		cancel()
		if err == nil && h.StoreOK {
			return cl, nil
		}
	}
	return nil, fmt.Errorf("no agent of cluster %s answers (run `weft up` to restart them)", cluster)
}

// retryStore repeats fn while the store is briefly unusable (an etcd leader
// election after a manager died), up to limit.
func retryStore(ctx context.Context, limit time.Duration, fn func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
