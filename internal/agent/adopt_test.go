package agent

import (
	"testing"

	"github.com/weft-dev/weft/internal/model"
)

func TestAdoptable(t *testing.T) {
	as := model.Assignment{Container: "order-service-1", Service: "order-service", Host: "host2", Def: "d1"}
	ready := model.ContainerStatus{Container: "order-service-1", Host: "host2", Def: "d1", Pid: 42,
		State: model.StateRunning, Health: model.HealthHealthy}
	with := func(f func(*model.ContainerStatus)) map[string]model.ContainerStatus {
		s := ready
		f(&s)
		return map[string]model.ContainerStatus{s.Container: s}
	}
	cases := []struct {
		name     string
		status   map[string]model.ContainerStatus
		recorded bool
		want     bool
	}{
		{"a ready instance an earlier agent ran here keeps its status", with(func(*model.ContainerStatus) {}), true, true},
		{"no process on disk: started afresh", with(func(*model.ContainerStatus) {}), false, false},
		{"no status in the store", map[string]model.ContainerStatus{}, true, false},
		{"reported from another host (it moved)", with(func(s *model.ContainerStatus) { s.Host = "host1" }), true, false},
		{"another definition (an update while the agent was away)", with(func(s *model.ContainerStatus) { s.Def = "d0" }), true, false},
		{"unhealthy before the agent died", with(func(s *model.ContainerStatus) { s.Health = model.HealthUnhealthy }), true, false},
		{"still starting", with(func(s *model.ContainerStatus) { s.State = model.StateStarting }), true, false},
		{"no pid to match the adopted process with", with(func(s *model.ContainerStatus) { s.Pid = 0 }), true, false},
		{"no health check: ready while running", with(func(s *model.ContainerStatus) { s.Health = model.HealthNone }), true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := adoptable(c.status, as, "host2", c.recorded)
			if (got != nil) != c.want {
				t.Fatalf("adoptable = %+v, want adopted %v", got, c.want)
			}
			if got != nil && *got != c.status[as.Container] {
				t.Fatalf("adoptable = %+v, want the store's status %+v", *got, c.status[as.Container])
			}
		})
	}
}
