package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/weft-dev/weft/internal/agent"
	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/provider"
	"github.com/weft-dev/weft/internal/spec"
)

var errBoom = errors.New("boom")

// fakeProvider records every call as one line and fails the one named fail.
type fakeProvider struct {
	exists bool
	fail   string
	calls  []string
}

func (f *fakeProvider) do(call string) error {
	f.calls = append(f.calls, call)
	if call == f.fail {
		return errBoom
	}
	return nil
}

func (f *fakeProvider) Exists(cluster string) (bool, error) {
	return f.exists, f.do("exists " + cluster)
}

func (f *fakeProvider) Ensure(_ context.Context, c *spec.Cluster) (map[string]provider.HostInfo, error) {
	return nil, f.do("ensure " + c.Name)
}

func (f *fakeProvider) StartAgent(_ context.Context, cluster, host, _ string, args []string) (int, error) {
	return 1, f.do(fmt.Sprintf("start-agent %s %s (%s)", cluster, host, args[0]))
}

func (f *fakeProvider) Destroy(_ context.Context, cluster string, keepVolumes bool) (provider.Removed, error) {
	return provider.Removed{Namespaces: []string{"ns1", "ns2"}, Processes: 3}, f.do(fmt.Sprintf("destroy %s keep-volumes=%v", cluster, keepVolumes))
}

// fakeAgent answers as a ready agent of a cluster that shows its plan,
// healthy, or as one that does not answer at all.
type fakeAgent struct {
	down    bool
	planned map[string]string
	status  api.Status
}

func (f *fakeAgent) Health(context.Context) (api.Health, error) {
	if f.down {
		return api.Health{}, errors.New("connection refused")
	}
	return api.Health{Phase: agent.PhaseReady, StoreOK: true}, nil
}

func (f *fakeAgent) Apply(context.Context, *spec.Cluster) (api.ApplyResult, error) {
	return api.ApplyResult{SpecChanged: true, Planned: f.planned}, nil
}

func (f *fakeAgent) Status(context.Context) (api.Status, error) {
	return f.status, nil
}

func (f *fakeProvider) Run(_ context.Context, cluster, host string, argv []string, _ io.Reader) ([]byte, error) {
	return nil, f.do(fmt.Sprintf("run %s %s %v", cluster, host, argv))
}
