package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/naming"
)

const isolationTmpl = `version: 1
name: NAME
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a}
services:
  web:
    command: [HELLO, -listen, ":8080", -name, web]
    user: nobody
    env: {SECRET: s3, LD_PRELOAD: /tmp/planted.so}
    port: 8080
    # Healthy only when the probe runs clean (nothing of the container's
    # environment), as the container's user, confined.
    health:
      exec: [sh, -c, 'test -z "$SECRET" && test -z "$LD_PRELOAD" && test "$(id -u)" = 65534 && grep -q "^NoNewPrivs:.1" /proc/self/status && grep -q "^Seccomp:.2" /proc/self/status']
      interval: 200ms
`

// TestContainerIsolation: through a real agent, a container sees neither
// the agent's socket nor weft's state nor the lab's namespaces; exec health
// probes and weft exec run clean, as the container's user, confined. (That
// the container cannot reach etcd on its host's underlay address needs the
// host firewall, which isolation does not provide.)
func TestContainerIsolation(t *testing.T) {
	c := writeCluster(t, uniqueName("iso"), isolationTmpl)
	upCluster(t, c) // returns once web-1 is healthy: the exec probe passed
	sock := filepath.Join(naming.HostStateDir(naming.DefaultStateRoot, c.name, "host1"), "agent.sock")
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the agent's socket %s should exist on the host: %v", sock, err)
	}
	r := c.exec(t, "web-1", "sh", "-c", fmt.Sprintf(`
		for p in %s %s /var/lib/weft /run/netns; do test -e "$p" && echo "visible $p"; done
		touch /usr/probe 2>/dev/null && echo "writable /usr"
		echo "env=[$SECRET$LD_PRELOAD] uid=$(id -u)"
		grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
		wget -q -T 3 -O - http://127.0.0.1:8080/health >/dev/null && echo served`, sock, filepath.Dir(sock)))
	if r.code != 0 {
		t.Fatalf("weft exec: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	for _, bad := range []string{"visible", "writable"} {
		if strings.Contains(r.stdout, bad) {
			t.Errorf("inside web-1:\n%s", r.stdout)
		}
	}
	for _, want := range []string{"env=[] uid=65534", "CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2", "served"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("weft exec output lacks %q:\n%s", want, r.stdout)
		}
	}
}
