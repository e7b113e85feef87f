package compose

import (
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/weft-dev/weft/internal/spec"
)

// update maps deploy.update_config to weft's update: (the same knobs as
// Swarm's, same names and values). parallelism 0, Swarm's "all at once",
// is every replica at once. Left out, weft's defaults apply (order
// start-first unless the service pins an address or has volumes,
// failure_action rollback), not Swarm's (stop-first, pause).
func (t *translation) update(path string, svc types.ServiceConfig) *spec.Update {
	if svc.Deploy == nil || svc.Deploy.UpdateConfig == nil {
		return nil
	}
	u := svc.Deploy.UpdateConfig
	t.from(path+".update", path+".deploy.update_config")
	out := &spec.Update{
		Delay:           spec.Duration{Duration: time.Duration(u.Delay)},
		Order:           u.Order,
		Monitor:         spec.Duration{Duration: time.Duration(u.Monitor)},
		FailureAction:   u.FailureAction,
		MaxFailureRatio: float64(u.MaxFailureRatio),
	}
	if u.Parallelism != nil {
		out.Parallelism = int(min(*u.Parallelism, 1<<20))
		if out.Parallelism == 0 {
			out.Parallelism = max(svc.GetScale(), 1)
		}
	}
	return out
}

// stopGrace maps stop_grace_period: how long an instance has between its
// stop signal and SIGKILL.
func (t *translation) stopGrace(path string, d *types.Duration) spec.Duration {
	t.from(path+".stop_grace", path+".stop_grace_period")
	return spec.Duration{Duration: duration(d)}
}
