package agent

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/fault"
	"github.com/weft-dev/weft/internal/store"
)

// faultStatus lists the chaos faults recorded in the store now (injected,
// not yet removed), oldest first; nil when the store does not answer.
func (a *Agent) faultStatus(ctx context.Context) []api.FaultStatus {
	st := a.store()
	if st == nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, storeReadTimeout)
	defer cancel()
	recs, _, err := st.Faults(rctx)
	if err != nil {
		return nil
	}
	return faultStatuses(recs)
}

// faultStatuses is what status shows of fault records: a body that does
// not decode still shows its id, kind and expiry.
func faultStatuses(recs map[string]store.FaultRecord) []api.FaultStatus {
	out := make([]api.FaultStatus, 0, len(recs))
	for _, fr := range recs {
		fs := api.FaultStatus{ID: fr.ID, Kind: fr.Kind, Expires: fr.Expires}
		var rec fault.Record
		if json.Unmarshal(fr.Body, &rec) == nil {
			fs.Target, fs.Mechanism, fs.Created = rec.Target, rec.Mechanism, rec.Created
		}
		out = append(out, fs)
	}
	slices.SortFunc(out, func(x, y api.FaultStatus) int {
		if c := x.Created.Compare(y.Created); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out
}
