package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestWaitAgents: it returns an agent once every agent is ready, and after
// its limit names each host's phase and where its log is.
func TestWaitAgents(t *testing.T) {
	c := loadThreeHosts(t)
	tests := []struct {
		name    string
		down    map[string]bool
		wantErr []string
	}{
		{name: "all ready"},
		{name: "host2 silent", down: map[string]bool{"host2": true}, wantErr: []string{
			"agents not ready after 50ms:\n",
			"  host1: ready (log: /state/hello/hosts/host1/agent.log)\n",
			"  host2: not answering (log: /state/hello/hosts/host2/agent.log)\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := Env{StateRoot: "/state", Agent: func(_, host string) Agent { return &fakeAgent{down: tt.down[host]} }}
			a, err := waitAgents(context.Background(), env, c, 50*time.Millisecond)
			if tt.wantErr == nil {
				if err != nil || a == nil {
					t.Fatalf("waitAgents = %v, %v; want an agent", a, err)
				}
				return
			}
			for _, want := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("waitAgents error = %v; want it to contain %q", err, want)
				}
			}
		})
	}
}

// TestRetryStore: a failing call is repeated until it succeeds or the limit
// passes, when its last error is returned.
func TestRetryStore(t *testing.T) {
	calls := 0
	err := retryStore(context.Background(), time.Minute, func() error {
		calls++
		if calls < 3 {
			return errBoom
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("retryStore = %v after %d calls, want success after 3", err, calls)
	}
	calls = 0
	err = retryStore(context.Background(), 0, func() error { calls++; return errBoom })
	if !errors.Is(err, errBoom) || calls != 1 {
		t.Errorf("retryStore past its limit = %v after %d calls, want boom after 1", err, calls)
	}
}
