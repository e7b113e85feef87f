package store

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFaultRecordsAndConnectVia(t *testing.T) {
	tc := startCluster(t, 1)
	ctx := testContext(t)
	var dials atomic.Int32
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	s, err := ConnectVia(cctx, dial, tc.endpoints(), tc.creds, uniqueName("f"))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if dials.Load() == 0 {
		t.Fatal("ConnectVia did not dial through the given dialer")
	}
	exp := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	if err := s.PutFault(ctx, FaultRecord{ID: "a1", Kind: "loss", Expires: exp, Body: []byte(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFault(ctx, FaultRecord{ID: "bad/id"}); err == nil || !strings.Contains(err.Error(), "bad id") {
		t.Errorf("a bad id is refused: %v", err)
	}
	recs, revs, err := s.Faults(ctx)
	if err != nil || len(recs) != 1 || !recs["a1"].Expires.Equal(exp) || string(recs["a1"].Body) != `{"x":1}` {
		t.Fatalf("faults %+v %v", recs, err)
	}
	// A stale revision does not delete a record rewritten since.
	stale := revs["a1"]
	if err := s.PutFault(ctx, FaultRecord{ID: "a1", Kind: "loss", Expires: exp.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFault(ctx, "a1", stale); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := s.Faults(ctx); len(recs) != 1 {
		t.Fatalf("a stale delete removed the record")
	}
	if err := s.DeleteFault(ctx, "a1", 0); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := s.Faults(ctx); len(recs) != 0 {
		t.Fatalf("record left: %v", recs)
	}
}
