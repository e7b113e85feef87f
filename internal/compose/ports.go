package compose

import (
	"fmt"
	"net"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/weft-dev/weft/internal/spec"
)

// ports maps published ports to weft's publisher: `"8080:80"` listens on
// 127.0.0.1:8080 of this machine and forwards to port 80 of the service's
// containers. Lab traffic never leaves the machine, so a published port is
// on the loopback only: a host_ip other than a loopback address is refused.
func (t *translation) ports(c *spec.Cluster, path string, svc types.ServiceConfig) []spec.Publish {
	var out []spec.Publish
	for i, p := range svc.Ports {
		field := fmt.Sprintf("%s.ports[%d]", path, i)
		if p.Protocol != "" && p.Protocol != "tcp" {
			t.add(field+".protocol", p.Protocol, "not supported by weft: the publisher forwards TCP only", "remove the port, or publish it as tcp")
			continue
		}
		if p.Published == "" {
			continue // only the container port: on the overlay every port is reachable (servicePort)
		}
		port, err := strconv.Atoi(p.Published)
		if err != nil {
			t.add(field+".published", p.Published, "weft publishes one port per entry, not a range", "write one entry per port, e.g. \"8080:80\"")
			continue
		}
		host := "127.0.0.1"
		switch ip := net.ParseIP(p.HostIP); {
		case p.HostIP == "":
		case ip != nil && ip.IsLoopback():
			host = p.HostIP
		default:
			t.add(field+".host_ip", p.HostIP, "weft publishes on this machine's loopback only: lab traffic never leaves the machine",
				"leave host_ip out (127.0.0.1) or write 127.0.0.1")
			continue
		}
		t.from(fmt.Sprintf("publish[%d]", len(c.Publish)+len(out)), field)
		out = append(out, spec.Publish{
			Listen:   net.JoinHostPort(host, strconv.Itoa(port)),
			Services: []string{svc.Name},
			Port:     int(p.Target),
		})
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
