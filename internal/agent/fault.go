package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/weft-dev/weft/internal/fault"
	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/store"
)

// faultSweep is how often an agent looks for expired faults among the
// records it knows: a fault ends at most about this long after its expiry
// even when its runner is gone.
const faultSweep = 250 * time.Millisecond

// faultRefresh is how often an agent reads the fault records, serializably
// from the member it talks to (Store.LocalFaults). Every agent reads them,
// so linearizable reads at every sweep cost the leader hosts x 4 reads a
// second; a fault is recorded before it is applied and lasts far longer
// than this.
const faultRefresh = time.Second

// faultStore is what the fault loop reads and deletes.
type faultStore interface {
	LocalFaults(ctx context.Context) (map[string]store.FaultRecord, map[string]int64, error)
	DeleteFault(ctx context.Context, id string, rev int64) error
}

// knownFault is a fault record as last read from the store.
type knownFault struct {
	rec     fault.Record
	rev     int64
	removed bool // undone; only the record's deletion is left
	deleted bool // its record deleted by this agent; kept until a read no longer shows it, so a late read does not undo it again
}

// faultLoop removes every expired fault of the cluster and then its record.
// Every agent runs it: removal is idempotent and needs only the record (in
// the lab all hosts share one machine), so a crashed or cut host's faults
// are ended by the others. Records are remembered between sweeps, so a
// fault ends on time even when the store is slow to answer at that moment
// (a member frozen by the very fault being ended).
func (a *Agent) faultLoop(ctx context.Context, st *store.Store) error {
	env := fault.Env{StateRoot: a.cfg.StateRoot, Exe: a.cfg.Exe, Lab: &lab.Lab{StateRoot: a.cfg.StateRoot, Log: a.log}}
	known := map[string]*knownFault{}
	t := time.NewTicker(faultSweep)
	defer t.Stop()
	var refreshed time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if now := time.Now(); now.Sub(refreshed) >= faultRefresh {
			refreshed = now
			a.refreshFaults(ctx, st, known)
		}
		a.sweepFaults(ctx, st, env, known, time.Now())
	}
}

// refreshFaults replaces known with the store's records, when it answers.
func (a *Agent) refreshFaults(ctx context.Context, st faultStore, known map[string]*knownFault) {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	recs, revs, err := st.LocalFaults(rctx)
	cancel()
	if err != nil {
		return // keep what we know; another agent may reach the store
	}
	for id := range known {
		if _, ok := recs[id]; !ok {
			delete(known, id)
		}
	}
	for id, fr := range recs {
		if k, ok := known[id]; ok && k.rev == revs[id] {
			continue
		}
		var r fault.Record
		if err := json.Unmarshal(fr.Body, &r); err != nil {
			a.log.Warn("undecodable fault record; deleting it", "fault", id, "err", err)
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			_ = st.DeleteFault(dctx, id, revs[id])
			cancel()
			continue
		}
		r.Expires = fr.Expires
		known[id] = &knownFault{rec: r, rev: revs[id]}
	}
}

func (a *Agent) sweepFaults(ctx context.Context, st faultStore, env fault.Env, known map[string]*knownFault, now time.Time) {
	for id, k := range known {
		if k.deleted || now.Before(k.rec.Expires) {
			continue
		}
		if !k.removed {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := fault.Remove(rctx, env, &k.rec)
			cancel()
			if err != nil {
				a.log.Warn("removing expired fault (retrying)", "fault", id, "err", err)
				continue
			}
			k.removed = true
			a.log.Info("removed expired fault", "fault", id, "kind", k.rec.Kind, "target", k.rec.Target)
		}
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := st.DeleteFault(dctx, id, k.rev); err == nil {
			k.deleted = true
		}
		cancel()
	}
}
