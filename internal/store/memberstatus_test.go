package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestMemberStatus: the only member of a cluster leads; an endpoint where
// no member listens is an error, not a member without a leader.
func TestMemberStatus(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	st, err := s.MemberStatus(ctx, tc.endpoints()[0])
	if err != nil || !st.HasLeader || !st.IsLeader {
		t.Fatalf("MemberStatus of the only member = %+v, %v; want the leader", st, err)
	}
	closed := fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if st, err := s.MemberStatus(cctx, closed); err == nil {
		t.Fatalf("MemberStatus of %s, where nothing listens = %+v, want an error", closed, st)
	}
}
