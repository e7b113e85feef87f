package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/weft-dev/weft/internal/spec"
)

func TestSegments(t *testing.T) {
	got := segments("services.web.ports[1].host_ip")
	if want := []string{"services", "web", "ports", "[1]", "host_ip"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLocate(t *testing.T) {
	doc := `x-health: &health
  test: [CMD, "true"]
services:
  web:
    image: web:v1
    build: .
    ports:
      - "8080:80"
      - "0.0.0.0:8081:80"
    healthcheck: *health
`
	tests := []struct {
		field     string
		line, col int
	}{
		{"services.web.build", 6, 5},
		{"services.web.ports[1].host_ip", 9, 9},            // the short-syntax item
		{"services.web.healthcheck.start_interval", 10, 5}, // stops at the alias' key
		{"services.web.deploy.mode", 4, 3},                 // a default: the service
		{"x-weft", 0, 0},                                   // not in the file
	}
	ps := make(spec.Problems, len(tests))
	for i, tt := range tests {
		ps[i].Field = tt.field
	}
	locate([]*source{parseSource("compose.yaml", []byte(doc))}, ps)
	for i, tt := range tests {
		if ps[i].Line != tt.line || ps[i].Column != tt.col {
			t.Errorf("%s: at %d:%d, want %d:%d", tt.field, ps[i].Line, ps[i].Column, tt.line, tt.col)
		}
	}
}

// TestLocateInIncludedFiles: a problem in a service of an included file
// (seed 000's layout: compose.yaml includes host_1/docker-compose.yml) is
// named by that file and its line there; one of the -f file by it.
func TestLocateInIncludedFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("compose.yaml", "name: cmp-inc\ninclude:\n  - host_1/docker-compose.yml\n  - path: [host_2/docker-compose.yml]\n"+
		"x-weft:\n  network: {cidr: 192.168.0.0/16, subnets: {a: 192.168.1.0/24}}\n  hosts: [{name: host1, subnet: a}]\n"+
		"services:\n  top:\n    image: top:v1\n    privileged: true\n")
	write("host_1/docker-compose.yml", "services:\n  one:\n    image: one:v1\n    cap_add: [NET_ADMIN]\n")
	write("host_2/docker-compose.yml", "services:\n  two:\n    image: two:v1\n\n    hostname: two\n")
	_, err := Load(context.Background(), filepath.Join(dir, "compose.yaml"))
	var ps spec.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v, want Problems", err)
	}
	want := map[string]string{
		"services.top.privileged": "compose.yaml:11",
		"services.one.cap_add":    "host_1/docker-compose.yml:4",
		"services.two.hostname":   "host_2/docker-compose.yml:5",
	}
	for _, p := range ps {
		rel, _ := filepath.Rel(dir, p.File)
		if w, ok := want[p.Field]; ok {
			if got := fmt.Sprintf("%s:%d", rel, p.Line); got != w {
				t.Errorf("%s: at %s, want %s", p.Field, got, w)
			}
			delete(want, p.Field)
		}
	}
	if len(want) > 0 {
		t.Errorf("not reported: %v; got:\n%v", want, ps)
	}
}
