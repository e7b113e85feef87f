package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/weft-dev/weft/internal/fault"
	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/store"
)

// faultSweep is how often an agent looks for expired faults: a fault ends
// at most this long after its expiry even when its runner is gone.
const faultSweep = 250 * time.Millisecond

// faultLoop removes every expired fault of the cluster and then its record.
// Every agent runs it: removal is idempotent and needs only the record (in
// the lab all hosts share one machine), so a crashed or cut host's faults
// are ended by the others.
func (a *Agent) faultLoop(ctx context.Context, st *store.Store) error {
	env := fault.Env{StateRoot: a.cfg.StateRoot, Exe: a.cfg.Exe, Lab: &lab.Lab{StateRoot: a.cfg.StateRoot, Log: a.log}}
	t := time.NewTicker(faultSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		a.sweepFaults(ctx, st, env, time.Now())
	}
}

func (a *Agent) sweepFaults(ctx context.Context, st *store.Store, env fault.Env, now time.Time) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	recs, revs, err := st.Faults(rctx)
	cancel()
	if err != nil {
		return // store unreachable from here: another agent sweeps
	}
	for id, fr := range recs {
		if now.Before(fr.Expires) {
			continue
		}
		var r fault.Record
		if err := json.Unmarshal(fr.Body, &r); err != nil {
			a.log.Warn("undecodable fault record; deleting it", "fault", id, "err", err)
		} else {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := fault.Remove(rctx, env, &r)
			cancel()
			if err != nil {
				a.log.Debug("removing expired fault", "fault", id, "err", err)
				continue
			}
			a.log.Info("removed expired fault", "fault", id, "kind", r.Kind, "target", r.Target)
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_ = st.DeleteFault(dctx, id, revs[id])
		cancel()
	}
}
