package compose

import (
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
	locate([]byte(doc), ps)
	for i, tt := range tests {
		if ps[i].Line != tt.line || ps[i].Column != tt.col {
			t.Errorf("%s: at %d:%d, want %d:%d", tt.field, ps[i].Line, ps[i].Column, tt.line, tt.col)
		}
	}
}
