package ui

import (
	"context"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// Source is where the page's facts come from and where its actions go.
type Source interface {
	// Status is the cluster's status, as `weft status --json` prints it.
	Status(ctx context.Context) (api.Status, error)
	// Spec is the applied cluster file (the gateway routes and their
	// weights), nil before the first apply.
	Spec(ctx context.Context) (*spec.Cluster, error)
	// Shifts is every route's last traffic shift and the routes' live
	// weights where they differ from the file.
	Shifts(ctx context.Context) (api.ShiftsAnswer, error)
	// Restart restarts a container through its host's agent.
	Restart(ctx context.Context, host, container string) (api.RestartResult, error)
	// Logs copies a container's output from its host's agent to w.
	Logs(ctx context.Context, host, container string, follow bool, w io.Writer) error
}

// Agents is the Source of a cluster on this machine: its agents' unix
// sockets, the same API and the same gathering (api.ClusterStatus) the CLI
// uses, so the page has the CLI user's authority and no more.
type Agents struct {
	StateRoot string
	Cluster   string
}

func (a Agents) client(host string) *api.Client {
	return api.NewClient(naming.AgentSocket(a.StateRoot, a.Cluster, host))
}

// Status implements Source.
func (a Agents) Status(ctx context.Context) (api.Status, error) {
	return api.ClusterStatus(ctx, a.StateRoot, a.Cluster)
}

// askTimeout bounds asking one agent for the applied file or the shifts.
const askTimeout = time.Second

// firstAnswer asks the cluster's agents in host order until one answers.
func firstAnswer[T any](ctx context.Context, a Agents, ask func(*api.Client, context.Context) (T, error)) (T, error) {
	var zero T
	socks, err := api.AgentSockets(a.StateRoot, a.Cluster)
	if err != nil {
		return zero, err
	}
	var last error
	for _, host := range slices.Sorted(maps.Keys(socks)) {
		actx, cancel := context.WithTimeout(ctx, askTimeout)
		v, err := ask(api.NewClient(socks[host]), actx)
		cancel()
		if err == nil {
			return v, nil
		}
		last = err
	}
	return zero, last
}

// Spec implements Source: the first agent that answers.
func (a Agents) Spec(ctx context.Context) (*spec.Cluster, error) {
	return firstAnswer(ctx, a, (*api.Client).Spec)
}

// Shifts implements Source: the first agent that answers.
func (a Agents) Shifts(ctx context.Context) (api.ShiftsAnswer, error) {
	return firstAnswer(ctx, a, (*api.Client).Shifts)
}

// Restart implements Source.
func (a Agents) Restart(ctx context.Context, host, container string) (api.RestartResult, error) {
	return a.client(host).Restart(ctx, container)
}

// Logs implements Source.
func (a Agents) Logs(ctx context.Context, host, container string, follow bool, w io.Writer) error {
	return a.client(host).Logs(ctx, container, follow, w)
}
