package agent

import (
	"reflect"
	"testing"

	"github.com/weft-dev/weft/internal/gateway"
	"github.com/weft-dev/weft/internal/spec"
)

func TestGatewayConfigRoutes(t *testing.T) {
	c := &spec.Cluster{Services: []spec.Service{
		{Name: "gw", Port: 8080}, {Name: "v1", Port: 8000}, {Name: "v2", Port: 8001},
	}}
	c.Routes = []spec.Route{
		{Prefix: "/one", Service: "v1", Retries: 2},
		{Prefix: "/api", Backends: []spec.RouteBackend{{Service: "v1", Weight: 90}, {Service: "v2", Weight: 10}},
			Match: &spec.RouteMatch{Header: "x-canary", Value: "always", Service: "v2"}},
	}
	text, err := gatewayConfig(c, c.Services[0])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := gateway.ParseConfig([]byte(text))
	if err != nil {
		t.Fatalf("the gateway refuses its config: %v\n%s", err, text)
	}
	want := []gateway.Route{
		{Prefix: "/one", Service: "v1", Port: 8000, Retries: 2},
		{Prefix: "/api", Backends: []gateway.Backend{{Service: "v1", Port: 8000, Weight: 90}, {Service: "v2", Port: 8001, Weight: 10}},
			Match: &gateway.HeaderMatch{Header: "x-canary", Value: "always", Service: "v2", Port: 8001}},
	}
	if !reflect.DeepEqual(cfg.Routes, want) {
		t.Errorf("routes = %+v\nwant %+v", cfg.Routes, want)
	}
	c.Routes = append(c.Routes, spec.Route{Prefix: "/x", Backends: []spec.RouteBackend{{Service: "gone", Weight: 1}}})
	if _, err := gatewayConfig(c, c.Services[0]); err == nil {
		t.Errorf("a backend naming an unknown service was accepted")
	}
}
