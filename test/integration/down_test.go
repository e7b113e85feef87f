package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/naming"
)

const smallTmpl = twoHosts + `services:
  web:
    command: [HELLO, -listen, ":8080", -name, web]
    replicas: 2
    port: 8080
    volumes: [{name: data, path: /mnt}]
    health: {http: /health, interval: 200ms}
`

// TestDownRemovesExactlyOneCluster: two clusters side by side; down of one
// leaves nothing of it and does not touch the other.
func TestDownRemovesExactlyOneCluster(t *testing.T) {
	a := writeCluster(t, uniqueName("da"), smallTmpl)
	b := writeCluster(t, uniqueName("db"), smallTmpl)
	upCluster(t, a)
	upCluster(t, b)
	linksBefore := run(t, execCmd("ip", "-o", "link"))

	mustWeft(t, "down", "-f", a.file)

	assertNoNamespaces(t, a.name)
	if pids, _ := cgroup.Pids(naming.CgroupRelPath(a.name)); len(pids) > 0 {
		t.Errorf("processes left: %v", pids)
	}
	if _, err := os.Stat(naming.StateDir(naming.DefaultStateRoot, a.name)); err == nil {
		t.Errorf("state dir left")
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), naming.NetnsPrefix(a.name)) {
		t.Errorf("mounts left")
	}
	if linksAfter := run(t, execCmd("ip", "-o", "link")); linksAfter != linksBefore {
		t.Errorf("root namespace links changed:\n%s\n---\n%s", linksBefore, linksAfter)
	}
	matches, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, m := range matches {
		b, _ := os.ReadFile(m)
		if strings.Contains(string(b), a.name) {
			t.Errorf("process %s mentions cluster %s: %q", m, a.name, b)
		}
	}
	// The other cluster still works.
	r := b.exec(t, "web-1", "wget", "-q", "-T", "3", "-O", "-", "http://web-2:8080/health")
	if r.code != 0 {
		t.Fatalf("cluster %s broken by down of %s: %s", b.name, a.name, r.stderr)
	}
}
