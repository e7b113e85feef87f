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
		target, ok := c.ServiceByName(r.Service)
		if !ok {
			return "", fmt.Errorf("route %s names unknown service %s", r.Prefix, r.Service)
		}
		cfg.Routes = append(cfg.Routes, gateway.Route{
			Prefix: r.Prefix, Service: r.Service, Port: target.Port,
			Timeout: r.Timeout.Duration, Retries: r.Retries,
		})
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encoding gateway config: %w", err)
	}
	return string(b), nil
}
