package cluster

import (
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/spec"
)

func TestNewProvider(t *testing.T) {
	tests := []struct {
		kind    string
		wantLab bool
		wantErr string
	}{
		{kind: spec.DefaultProvider, wantLab: true},
		{kind: "ssh", wantErr: `provider "ssh": unknown provider; only ` + "`lab`"},
		{kind: "", wantErr: "unknown provider"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			p, err := NewProvider(tt.kind, "/state", nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewProvider(%q) = %v, %v; want an error with %q", tt.kind, p, err, tt.wantErr)
				}
				return
			}
			l, ok := p.(*lab.Lab)
			if err != nil || !ok || l.StateRoot != "/state" {
				t.Fatalf("NewProvider(%q) = %#v, %v; want the lab with state root /state", tt.kind, p, err)
			}
		})
	}
}
