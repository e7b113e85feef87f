package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/lab"
	sshprov "github.com/weft-dev/weft/internal/provider/ssh"
	"github.com/weft-dev/weft/internal/spec"
)

func TestNewProvider(t *testing.T) {
	tests := []struct {
		kind    string
		wantLab bool
		wantErr string
	}{
		{kind: spec.DefaultProvider, wantLab: true},
		{kind: spec.ProviderSSH},
		{kind: "aws", wantErr: `provider "aws": unknown provider; weft knows ` + "`lab` and `ssh`"},
		{kind: "", wantErr: "unknown provider"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			p, err := NewProvider(tt.kind, ProviderOptions{StateRoot: "/state"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewProvider(%q) = %v, %v; want an error with %q", tt.kind, p, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantLab {
				if l, ok := p.(*lab.Lab); !ok || l.StateRoot != "/state" {
					t.Fatalf("NewProvider(%q) = %#v; want the lab with state root /state", tt.kind, p)
				}
				return
			}
			if s, ok := p.(*sshprov.Provider); !ok || s.StateRoot != "/state" {
				t.Fatalf("NewProvider(%q) = %#v; want provider ssh with state root /state", tt.kind, p)
			}
		})
	}
}

func TestProviderOfFollowsTheRecord(t *testing.T) {
	root := t.TempDir()
	o := ProviderOptions{StateRoot: root}
	p, err := ProviderOf("c1", o)
	if _, ok := p.(*lab.Lab); err != nil || !ok {
		t.Fatalf("without a record: %T, %v; want the lab", p, err)
	}
	if err := os.MkdirAll(filepath.Join(root, "c1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "c1", "ssh.json"), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err = ProviderOf("c1", o)
	if _, ok := p.(*sshprov.Provider); err != nil || !ok {
		t.Fatalf("with a record: %T, %v; want provider ssh", p, err)
	}
}
