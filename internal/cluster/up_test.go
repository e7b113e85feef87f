package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// loadThreeHosts is the three-host example cluster (hello: host1..3 in
// three subnets), without its published ports: Up is tested without
// starting a publisher.
func loadThreeHosts(t *testing.T) *spec.Cluster {
	t.Helper()
	c, err := spec.Load("../../examples/hello/weft.yaml")
	if err != nil {
		t.Fatalf("loading the example cluster file: %v", err)
	}
	c.Publish = nil
	return c
}

// TestUpCallsTheProviderInOrder: Up asks the provider whether the cluster
// exists, builds the hosts, then starts each host's agent in the file's
// order; the first failing step ends it with an error saying what was being
// done, and a new cluster that failed while it was being built is removed.
func TestUpCallsTheProviderInOrder(t *testing.T) {
	all := []string{
		"exists hello",
		"ensure hello",
		"start-agent hello host1 (agent)",
		"start-agent hello host2 (agent)",
		"start-agent hello host3 (agent)",
	}
	tests := []struct {
		name    string
		exists  bool
		fail    string
		calls   []string
		wantErr string // "" for none
	}{
		{name: "all steps", calls: all},
		{name: "existing cluster", exists: true, calls: all},
		{name: "exists fails", fail: "exists hello", calls: all[:1], wantErr: "boom"},
		{name: "new underlay fails and is removed", fail: "ensure hello", calls: append(slices.Clone(all[:2]), "destroy hello keep-volumes=true"), wantErr: "building the underlay: boom"},
		{name: "existing underlay fails and is kept", exists: true, fail: "ensure hello", calls: all[:2], wantErr: "building the underlay: boom"},
		{name: "second agent fails", fail: "start-agent hello host2 (agent)", calls: all[:4], wantErr: "starting the agent of host2: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadThreeHosts(t)
			p := &fakeProvider{exists: tt.exists, fail: tt.fail}
			a := &fakeAgent{
				planned: map[string]string{"api-1": "host1"},
				status: api.Status{Cluster: "hello", Applied: true, Containers: []model.ContainerStatus{
					{Container: "api-1", Service: "api", Host: "host1", State: model.StateRunning, Health: model.HealthHealthy},
				}},
			}
			var said []string
			env := Env{
				StateRoot: t.TempDir(),
				Provider:  p,
				Agent:     func(string, string) Agent { return a },
				Say:       func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) },
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := Up(ctx, env, c, 10*time.Second)
			if !slices.Equal(p.calls, tt.calls) {
				t.Errorf("provider calls:\n  %s\nwant:\n  %s", strings.Join(p.calls, "\n  "), strings.Join(tt.calls, "\n  "))
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Up: %v", err)
				}
				if res.Created == tt.exists || res.Healthy != 1 || res.Expected != 1 || !res.SpecChanged {
					t.Errorf("result %+v: want created=%v, 1/1 healthy, spec changed", res, !tt.exists)
				}
				if last := said[len(said)-1]; !strings.HasPrefix(last, "cluster hello is up in ") {
					t.Errorf("last progress line %q, want the cluster up", last)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errBoom) {
				t.Fatalf("Up error = %v, want %q wrapping the provider's", err, tt.wantErr)
			}
			if res.Cluster != "hello" || res.Healthy != 0 {
				t.Errorf("result %+v: want cluster hello, nothing healthy", res)
			}
		})
	}
}
