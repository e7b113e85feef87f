package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestDownRemovesEverythingOnce: Down asks the provider to remove the
// cluster exactly once, passing keep-volumes on, and says which cluster it
// failed to remove.
func TestDownRemovesEverythingOnce(t *testing.T) {
	tests := []struct {
		name        string
		keepVolumes bool
		fail        string
		call        string
		wantErr     string
	}{
		{name: "removes", call: "destroy c1 keep-volumes=false"},
		{name: "keeps volumes", keepVolumes: true, call: "destroy c1 keep-volumes=true"},
		{name: "fails", fail: "destroy c1 keep-volumes=false", call: "destroy c1 keep-volumes=false", wantErr: "removing cluster c1: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeProvider{fail: tt.fail}
			rm, err := Down(context.Background(), Env{Provider: p}, "c1", tt.keepVolumes)
			if want := []string{tt.call}; !slices.Equal(p.calls, want) {
				t.Errorf("provider calls %q, want %q", p.calls, want)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errBoom) {
					t.Fatalf("Down error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(rm.Namespaces) != 2 || rm.Processes != 3 {
				t.Errorf("Down = %+v, %v; want the provider's removal", rm, err)
			}
		})
	}
}
