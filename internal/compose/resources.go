package compose

import (
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/weft-dev/weft/internal/spec"
)

// resources maps deploy.resources.limits (memory, cpus, pids) to weft's
// cgroup limits. Reservations are refused by unsupported.go: weft does not
// reserve, it only limits.
func (t *translation) resources(path string, d *types.DeployConfig) *spec.Resources {
	if d == nil || d.Resources.Limits == nil {
		return nil
	}
	l := d.Resources.Limits
	t.from(path+".resources.memory", path+".deploy.resources.limits.memory")
	t.from(path+".resources.cpu", path+".deploy.resources.limits.cpus")
	t.from(path+".resources.pids", path+".deploy.resources.limits.pids")
	r := &spec.Resources{Memory: int64(l.MemoryBytes), CPU: float64(l.NanoCPUs), Pids: int(l.Pids)}
	if *r == (spec.Resources{}) {
		return nil
	}
	return r
}
