package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/naming"
)

const goodBase = twoHosts + `services:
  web:
    command: [HELLO]
    port: 8080
`

// TestBadFilesAreRefused: every kind of bad file exits 2 naming the field,
// and nothing of the cluster exists afterwards.
func TestBadFilesAreRefused(t *testing.T) {
	cases := []struct {
		name, from, to, field string
	}{
		{"overlapping subnets", "b: 192.168.2.0/24}", "b: 192.168.1.128/25}", "subnets"},
		{"unknown subnet", "{name: host2, subnet: b}", "{name: host2, subnet: z}", "subnet"},
		{"two hosts on one address", "  - {name: host1, subnet: a}\n  - {name: host2, subnet: b}", "  - {name: host1, subnet: a, address: 192.168.1.20}\n  - {name: host2, subnet: a, address: 192.168.1.20}", "address"},
		{"two containers on one address", "    port: 8080\n", "    port: 8080\n    ip: 10.10.0.7\n  db:\n    command: [HELLO]\n    ip: 10.10.0.7\n", "ip"},
		{"pinned outside overlay", "    port: 8080\n", "    port: 8080\n    ip: 10.20.0.7\n", "ip"},
		{"pinned in reserved block", "    port: 8080\n", "    port: 8080\n    ip: 10.10.255.2\n", "ip"},
		{"address with replicas", "    port: 8080\n", "    port: 8080\n    ip: 10.10.0.7\n    replicas: 2\n", "ip"},
		{"vni out of range", "vni: 444", "vni: 16777216", "vni"},
		{"unknown dependency", "    port: 8080\n", "    port: 8080\n    depends_on: [nope]\n", "depends_on"},
		{"dependency cycle", "    port: 8080\n", "    port: 8080\n    depends_on: [db]\n  db:\n    command: [HELLO]\n    depends_on: [web]\n", "web -> db -> web"},
		{"unknown host", "    port: 8080\n", "    port: 8080\n    host: host9\n", "host"},
		{"bad name", "name: NAME", "name: NAME_Bad/x", "name"},
		{"unknown field", "    port: 8080\n", "    port: 8080\n    replicaz: 2\n", "replicas"},
		{"yaml syntax", "hosts:\n", "hosts: [\n", "line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := uniqueName("bad")
			body := strings.Replace(goodBase, tc.from, tc.to, 1)
			if body == goodBase {
				t.Fatalf("case does not change the file: %q", tc.from)
			}
			c := writeCluster(t, name, body)
			for _, cmd := range []string{"validate", "up"} {
				r := weft(t, cmd, "-f", c.file)
				if r.code != 2 {
					t.Fatalf("weft %s: exit %d, want 2\n%s%s", cmd, r.code, r.stdout, r.stderr)
				}
				if !strings.Contains(r.stderr, tc.field) {
					t.Fatalf("weft %s: error does not name %q:\n%s", cmd, tc.field, r.stderr)
				}
				if strings.Contains(r.stderr, "goroutine ") {
					t.Fatalf("stack trace in output:\n%s", r.stderr)
				}
			}
			assertNoNamespaces(t, name)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		r := weft(t, "validate", "-f", filepath.Join(t.TempDir(), "nope.yaml"))
		if r.code != 2 || !strings.Contains(r.stderr, "nope.yaml") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("all problems at once", func(t *testing.T) {
		body := strings.Replace(strings.Replace(goodBase, "vni: 444", "vni: 0", 1), "{name: host2, subnet: b}", "{name: host2, subnet: z}", 1)
		c := writeCluster(t, uniqueName("bad"), body)
		r := weft(t, "validate", "-f", c.file)
		if r.code != 2 || !strings.Contains(r.stderr, "vni") || !strings.Contains(r.stderr, "subnet") {
			t.Fatalf("both problems should be reported: %s", r.stderr)
		}
	})
}

func assertNoNamespaces(t *testing.T, cluster string) {
	t.Helper()
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), naming.NetnsPrefix(cluster)) {
			t.Fatalf("namespace %s exists", e.Name())
		}
	}
}
