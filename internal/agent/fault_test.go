package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/fault"
	"github.com/weft-dev/weft/internal/store"
)

// fakeFaults is a store's fault records as one member answers them.
type fakeFaults struct {
	recs    map[string]store.FaultRecord
	revs    map[string]int64
	err     error
	deleted []string
}

func (f *fakeFaults) LocalFaults(context.Context) (map[string]store.FaultRecord, map[string]int64, error) {
	if f.err != nil {
		return nil, nil, f.err
	}
	return f.recs, f.revs, nil
}

func (f *fakeFaults) DeleteFault(_ context.Context, id string, rev int64) error {
	f.deleted = append(f.deleted, id)
	return nil
}

func faultRec(t *testing.T, id string, expires time.Time) store.FaultRecord {
	t.Helper()
	body, err := json.Marshal(fault.Record{ID: id, Kind: "loss", Target: "host2"})
	if err != nil {
		t.Fatal(err)
	}
	return store.FaultRecord{ID: id, Kind: "loss", Expires: expires, Body: body}
}

func TestRefreshFaults(t *testing.T) {
	later := time.Now().Add(time.Hour)
	type want struct {
		ids     []string // known after the refresh
		deleted []string // records deleted in the store
	}
	cases := []struct {
		name  string
		known map[string]*knownFault
		store fakeFaults
		want  want
	}{
		{
			name:  "new records are learnt with the store's expiry",
			known: map[string]*knownFault{},
			store: fakeFaults{recs: map[string]store.FaultRecord{"f1": faultRec(t, "f1", later)}, revs: map[string]int64{"f1": 5}},
			want:  want{ids: []string{"f1"}},
		},
		{
			name:  "a read that fails keeps what is known",
			known: map[string]*knownFault{"f1": {rev: 5}},
			store: fakeFaults{err: errors.New("no member answers")},
			want:  want{ids: []string{"f1"}},
		},
		{
			name:  "records gone from the store are forgotten",
			known: map[string]*knownFault{"f1": {rev: 5, deleted: true}, "f2": {rev: 6}},
			store: fakeFaults{recs: map[string]store.FaultRecord{}, revs: map[string]int64{}},
			want:  want{},
		},
		{
			name:  "an undecodable record is deleted",
			known: map[string]*knownFault{},
			store: fakeFaults{recs: map[string]store.FaultRecord{"bad": {ID: "bad", Body: json.RawMessage(`"x"`)}}, revs: map[string]int64{"bad": 7}},
			want:  want{deleted: []string{"bad"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{log: slog.New(slog.DiscardHandler)}
			a.refreshFaults(context.Background(), &tc.store, tc.known)
			var ids []string
			for id := range tc.known {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tc.want.ids) || !slices.Equal(tc.store.deleted, tc.want.deleted) {
				t.Errorf("known %v, deleted %v; want known %v, deleted %v", ids, tc.store.deleted, tc.want.ids, tc.want.deleted)
			}
			if k := tc.known["f1"]; k != nil && tc.store.err == nil && !k.rec.Expires.Equal(later) {
				t.Errorf("f1 expires %v, want the store's %v", k.rec.Expires, later)
			}
		})
	}
}

// A record this agent deleted, shown again by a member that has not
// applied the deletion yet, is not undone a second time; a later record
// under the same id is.
func TestDeletedFaultIsNotUndoneByALateRead(t *testing.T) {
	a := &Agent{log: slog.New(slog.DiscardHandler)}
	past := time.Now().Add(-time.Second)
	st := &fakeFaults{recs: map[string]store.FaultRecord{"f1": faultRec(t, "f1", past)}, revs: map[string]int64{"f1": 5}}
	known := map[string]*knownFault{}
	a.refreshFaults(context.Background(), st, known)
	known["f1"].removed = true // undone already: only the record is left to delete
	a.sweepFaults(context.Background(), st, fault.Env{}, known, time.Now())
	if !slices.Equal(st.deleted, []string{"f1"}) || !known["f1"].deleted {
		t.Fatalf("after the sweep: deleted %v, known %+v; want f1 deleted and remembered as such", st.deleted, known["f1"])
	}
	// The late member still shows revision 5.
	a.refreshFaults(context.Background(), st, known)
	if k := known["f1"]; k == nil || !k.deleted || !k.removed {
		t.Fatalf("a late read brought f1 back as %+v, want it still deleted", k)
	}
	a.sweepFaults(context.Background(), st, fault.Env{}, known, time.Now())
	if len(st.deleted) != 1 {
		t.Fatalf("f1 deleted %d times, want once", len(st.deleted))
	}
	// A new record under the same id (a new revision) is a new fault.
	st.revs["f1"] = 9
	a.refreshFaults(context.Background(), st, known)
	if k := known["f1"]; k == nil || k.deleted || k.removed || k.rev != 9 {
		t.Fatalf("the rewritten f1 is known as %+v, want a fresh record at revision 9", k)
	}
}
