package store

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

func TestVIPClaimRenewTakeoverRelease(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	ctx := testContext(t)
	reader := tc.connect(t, tc.endpoints(), cluster)
	var vs [2]*VIPStore
	for i := range vs {
		v, err := ConnectVIP(ctx, tc.endpoints(), tc.creds, cluster)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		vs[i] = v
	}
	s1, s2 := vs[0], vs[1]

	w := s2.WatchVIP(ctx, "shop")
	eventually(t, 5*time.Second, "the watch reads the absent key", func() bool { _, ok := w.Latest(); return ok })
	if st, _ := w.Latest(); st.Record != nil || st.Rev != 0 {
		t.Fatalf("state before any claim = %+v, want absent", st)
	}

	rec := model.VIPRecord{Holder: "host1", HolderAddr: netip.MustParseAddr("192.168.1.10"), Epoch: 1, Since: time.Now().UTC()}
	t1, err := s1.ClaimVIP(ctx, "shop", 0, rec)
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	// A second candidate that read the same (absent) key loses.
	if _, err := s2.ClaimVIP(ctx, "shop", 0, model.VIPRecord{Holder: "host2", Epoch: 1}); !errors.Is(err, ErrVIPClaimLost) {
		t.Fatalf("second claim on the same revision = %v, want ErrVIPClaimLost", err)
	}
	eventually(t, 5*time.Second, "the watch sees host1", func() bool {
		st, _ := w.Latest()
		return st.Record != nil && st.Record.Holder == "host1"
	})
	before, _ := w.Latest()
	if err := t1.Renew(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	eventually(t, 5*time.Second, "the watch sees the renewal as a new revision", func() bool {
		st, _ := w.Latest()
		return st.Rev > before.Rev
	})
	// A candidate based on a stale revision loses against the renewal.
	if _, err := s2.ClaimVIP(ctx, "shop", before.Rev, model.VIPRecord{Holder: "host2", Epoch: 2}); !errors.Is(err, ErrVIPClaimLost) {
		t.Fatalf("claim on a revision older than the renewal = %v, want ErrVIPClaimLost", err)
	}
	cur, _ := w.Latest()
	t2, err := s2.ClaimVIP(ctx, "shop", cur.Rev, model.VIPRecord{Holder: "host2", Epoch: 2})
	if err != nil {
		t.Fatalf("takeover on the current revision: %v", err)
	}
	// The deposed holder's next renewal fails: it must stop delivering.
	if err := t1.Renew(ctx); !errors.Is(err, ErrVIPLost) {
		t.Fatalf("renew after takeover = %v, want ErrVIPLost", err)
	}
	t1.Abandon()
	if err := t2.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	all, err := reader.VIPs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := all["shop"]; got.Record == nil || got.Record.Holder != "" || got.Record.Epoch != 2 {
		t.Fatalf("after release = %+v, want a record without holder at epoch 2", got.Record)
	}
}

func TestVIPMembersWatch(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	ctx := testContext(t)
	vs, err := ConnectVIP(ctx, tc.endpoints(), tc.creds, cluster)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vs.Close() })
	w := vs.WatchVIPMembers(ctx, "shop")
	eventually(t, 5*time.Second, "the watch reads no members", func() bool { m, ok := w.Latest(); return ok && len(m) == 0 })
	var terms []*VIPTerm
	for _, h := range []string{"host1", "host2"} {
		term, err := vs.ClaimVIP(ctx, VIPMemberKey("shop", h), 0, model.VIPRecord{Holder: h, Epoch: 1})
		if err != nil {
			t.Fatalf("member %s: %v", h, err)
		}
		terms = append(terms, term)
	}
	eventually(t, 5*time.Second, "two members", func() bool {
		m, _ := w.Latest()
		return len(m) == 2 && m["host1"].Record.Holder == "host1" && m["host2"].Record.Holder == "host2"
	})
	before, _ := w.Latest()
	if err := terms[0].Renew(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "host1's renewal seen, host2 unchanged", func() bool {
		m, _ := w.Latest()
		return m["host1"].Rev > before["host1"].Rev && m["host2"].Rev == before["host2"].Rev && m["host2"].Seen.Equal(before["host2"].Seen)
	})
	if err := terms[1].Release(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "host2 released", func() bool { m, _ := w.Latest(); return m["host2"].Record != nil && m["host2"].Record.Holder == "" })
	terms[0].Abandon()
}

// A renewal etcd committed but whose answer was lost (its deadline passed)
// leaves the term behind the key by one write of its own: the next renewal
// must adopt it, not report the term lost and fence a live holder.
func TestVIPRenewAfterLostAnswer(t *testing.T) {
	tc := startCluster(t, 1)
	cluster := uniqueName("c")
	ctx := testContext(t)
	v, err := ConnectVIP(ctx, tc.endpoints(), tc.creds, cluster)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	rec := model.VIPRecord{Holder: "host1", HolderAddr: netip.MustParseAddr("192.168.1.10"), Epoch: 1, Since: time.Now().UTC()}
	term, err := v.ClaimVIP(ctx, "shop", 0, rec)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	t.Cleanup(term.Abandon)
	// The lost answer: the same term's write, the term not told.
	stale := term.rev
	if err := term.Renew(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	term.mu.Lock()
	term.rev = stale
	term.mu.Unlock()
	if err := term.Renew(ctx); err != nil {
		t.Fatalf("renew after a lost answer = %v, want the term kept", err)
	}
	// A changed record is written under the adopted revision.
	term.mu.Lock()
	term.rev = stale
	term.mu.Unlock()
	upd := rec
	upd.LastFailover = &model.VIPFailover{From: "host2", To: "host1", Cause: "test"}
	if err := term.Update(ctx, upd); err != nil {
		t.Fatalf("update after a lost answer: %v", err)
	}
	all, err := tc.connect(t, tc.endpoints(), cluster).VIPs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := all["shop"].Record; got == nil || got.LastFailover == nil || got.LastFailover.Cause != "test" {
		t.Fatalf("record after the update = %+v, want the update written", got)
	}
	// Another holder's write (another lease) still ends the term.
	if _, err := v.ClaimVIP(ctx, "shop", all["shop"].Rev, model.VIPRecord{Holder: "host2", Epoch: 2}); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	if err := term.Renew(ctx); !errors.Is(err, ErrVIPLost) {
		t.Fatalf("renew after a takeover = %v, want ErrVIPLost", err)
	}
}
