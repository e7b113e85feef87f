package store

import (
	"errors"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestGuard: the zero Guard always holds; a term's Guard holds while the
// term lasts and, once it ended, fails with ErrNotLeader and writes nothing.
func TestGuard(t *testing.T) {
	tc := startCluster(t, 1)
	s := tc.connect(t, tc.endpoints(), uniqueName("c"))
	ctx := testContext(t)
	put := func(value string) []clientv3.Op { return []clientv3.Op{clientv3.OpPut(s.root+"guarded", value)} }
	value := func() string {
		resp, err := s.client.Get(ctx, s.root+"guarded")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("reading the guarded key: %v, %v", resp, err)
		}
		return string(resp.Kvs[0].Value)
	}

	if err := s.commitGuarded(ctx, Guard{}, put("unguarded"), "a key"); err != nil || value() != "unguarded" {
		t.Fatalf("a write under the zero Guard: %v", err)
	}
	lead, err := s.Lead(ctx, "host1")
	if err != nil {
		t.Fatal(err)
	}
	guard := lead.Guard()
	if err := s.commitGuarded(ctx, guard, put("leader"), "a key"); err != nil || value() != "leader" {
		t.Fatalf("a write under the leader's Guard: %v", err)
	}
	if err := lead.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	err = s.commitGuarded(ctx, guard, put("deposed"), "a key")
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a write under an ended term's Guard = %v, want ErrNotLeader", err)
	}
	if got := value(); got != "leader" {
		t.Errorf("the failed write changed the key to %q", got)
	}
}
