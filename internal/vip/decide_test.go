package vip

import (
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	other := &model.VIPRecord{Holder: "host1", Epoch: 3}
	cases := []struct {
		name   string
		view   View
		action Action
	}{
		{"unhealthy candidate stays out", View{Self: "host2", Record: nil, Now: now}, Nothing},
		{"no key: claim", View{Self: "host2", Healthy: true, Now: now}, Claim},
		{"released: claim", View{Self: "host2", Healthy: true, Record: &model.VIPRecord{Epoch: 3}, Now: now}, Claim},
		{"own record without term: claim again", View{Self: "host1", Healthy: true, Record: other, Seen: now, Now: now}, Claim},
		{"holder answers probes", View{Self: "host2", Healthy: true, Record: other, Seen: now.Add(-time.Hour), Now: now}, Nothing},
		{"two misses are not enough", View{Self: "host2", Healthy: true, Record: other, Misses: 2, Seen: now.Add(-time.Hour), Now: now}, Nothing},
		{"misses but the holder still renews: fenced out", View{Self: "host2", Healthy: true, Record: other, Misses: 5, Seen: now.Add(-Fence), Now: now}, Nothing},
		{"misses and renewals stopped: take over", View{Self: "host2", Healthy: true, Record: other, Misses: 3, Seen: now.Add(-Fence - Margin), Now: now}, Claim},
		{"unhealthy candidate never takes over", View{Self: "host2", Record: other, Misses: 9, Seen: now.Add(-time.Hour), Now: now}, Nothing},
		{"holder stays while healthy", View{Self: "host1", Healthy: true, Holding: true, Record: other, Now: now}, Nothing},
		{"holder resigns when unhealthy", View{Self: "host1", Holding: true, Record: other, Now: now}, Resign},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, cause := Decide(tc.view)
			if got != tc.action {
				t.Errorf("Decide = %s (%q), want %s", got, cause, tc.action)
			}
			if got != Nothing && cause == "" {
				t.Errorf("Decide = %s without a cause", got)
			}
		})
	}
}
