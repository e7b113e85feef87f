package agent

import (
	"encoding/json"
	"fmt"

	"github.com/weft-dev/weft/internal/gateway"
	"github.com/weft-dev/weft/internal/spec"
)

// isGateway says whether a service runs weft's own gateway, which gets the
// cluster file's routes handed to it.
func isGateway(svc spec.Service) bool {
	return len(svc.Command) >= 2 && svc.Command[0] == "weft" && svc.Command[1] == "gateway"
}

// gatewayConfig is the gateway's configuration derived from the cluster
// file, as the JSON the gateway reads from its environment. Its routes name
// services; the gateway finds their healthy instances through the host's DNS.
func gatewayConfig(c *spec.Cluster, svc spec.Service) (string, error) {
	listen := svc.Port
	if listen == 0 {
		listen = 80
	}
	cfg := gateway.Config{
		Listen:            fmt.Sprintf(":%d", listen),
		MetricsListen:     fmt.Sprintf(":%d", c.Gateway.MetricsPort),
		MaxBodyBytes:      c.Gateway.MaxBodyBytes,
		Domain:            c.Domain,
		Name:              c.Gateway.Name,
		AccessLogSampling: gateway.AccessLogSampling{Sample: c.Gateway.AccessLogSample},
	}
	for _, r := range c.Routes {
		port := func(service string) (int, error) {
			target, ok := c.ServiceByName(service)
			if !ok {
				return 0, fmt.Errorf("route %s names unknown service %s", r.Prefix, service)
			}
			return target.Port, nil
		}
		gr := gateway.Route{Prefix: r.Prefix, Timeout: r.Timeout.Duration, Retries: r.Retries}
		var err error
		if len(r.Backends) == 0 {
			gr.Service = r.Service
			if gr.Port, err = port(r.Service); err != nil {
				return "", err
			}
		}
		for _, b := range r.Backends {
			p, err := port(b.Service)
			if err != nil {
				return "", err
			}
			gr.Backends = append(gr.Backends, gateway.Backend{Service: b.Service, Port: p, Weight: b.Weight})
		}
		if m := r.Match; m != nil {
			p, err := port(m.Service)
			if err != nil {
				return "", err
			}
			gr.Match = &gateway.HeaderMatch{Header: m.Header, Value: m.Value, Service: m.Service, Port: p}
		}
		cfg.Routes = append(cfg.Routes, gr)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encoding gateway config: %w", err)
	}
	return string(b), nil
}
