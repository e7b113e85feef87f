package agent

import (
	"context"
	"sort"
	"strings"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// vipStatus lists the VIPs of c with their holders as the store says; a
// store error leaves the holders empty (the rest of the status still shows).
func (a *Agent) vipStatus(ctx context.Context, c *spec.Cluster) []api.VIPStatus {
	if c == nil || len(c.VIPs) == 0 {
		return nil
	}
	var states map[string]store.VIPState
	if st := a.store(); st != nil {
		states, _ = st.VIPs(ctx)
	}
	out := make([]api.VIPStatus, 0, len(c.VIPs))
	for _, v := range c.VIPs {
		vs := api.VIPStatus{Name: v.Name, Address: v.Address.String(), Port: v.Port, Mode: v.Mode}
		if v.Mode == spec.VIPActiveActive {
			for key, st := range states {
				host, ok := strings.CutPrefix(key, store.VIPMemberKey(v.Name, ""))
				if ok && st.Record != nil && st.Record.Holder != "" {
					vs.Holders = append(vs.Holders, host)
				}
			}
			sort.Strings(vs.Holders)
			out = append(out, vs)
			continue
		}
		if rec := states[v.Name].Record; rec != nil {
			vs.Holder, vs.Epoch = rec.Holder, rec.Epoch
			if rec.Holder != "" {
				since := rec.Since
				vs.Since = &since
			}
			if f := rec.LastFailover; f != nil {
				vs.LastFailover = &api.VIPFailover{At: f.At, From: f.From, To: f.To, Cause: f.Cause,
					DurationMS: float64(f.Duration.Microseconds()) / 1000}
			}
		}
		out = append(out, vs)
	}
	return out
}
