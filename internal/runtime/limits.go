package runtime

import (
	"fmt"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/spec"
)

// Resources are a container's limits, enforced by its cgroup; a zero field
// is no limit.
type Resources struct {
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	CPU         float64 `json:"cpu,omitempty"` // cores
	Pids        int     `json:"pids,omitempty"`
}

// ResourcesOf is the Resources of a container of svc: its file's
// `resources:`, with the default pids limit when none is given.
func ResourcesOf(svc spec.Service) Resources {
	r := Resources{Pids: svc.Resources.EffectivePids()}
	if svc.Resources != nil {
		r.MemoryBytes, r.CPU = svc.Resources.Memory, svc.Resources.CPU
	}
	return r
}

func (r Resources) cgroupLimits() cgroup.Limits {
	return cgroup.Limits{MemoryBytes: r.MemoryBytes, CPU: r.CPU, Pids: int64(r.Pids)}
}

func (r Resources) validate(container string) error {
	if r.MemoryBytes < 0 || r.CPU < 0 || r.Pids < 0 {
		return fmt.Errorf("container %s: negative resource limit %+v; limits are positive, or 0 for none", container, r)
	}
	return nil
}
