package lab

import (
	"context"
	"strings"
	"testing"
)

// Run runs a command inside the host's namespace, with stdin, and fails
// with the output for a non-zero exit.
func TestRunInHostNamespace(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cluster := uniqueCluster(t)
	l := newLab(t, cluster)
	if _, err := l.Ensure(ctx, labCluster(cluster, 2)); err != nil {
		t.Fatal(err)
	}
	out, err := l.Run(ctx, cluster, "host2", []string{"ip", "-o", "-4", "addr", "show", "dev", "eth0"}, nil)
	if err != nil || !strings.Contains(string(out), "192.168.2.10/24") {
		t.Errorf("ip addr on host2: %q, %v; want host2's own eth0 address", out, err)
	}
	out, err = l.Run(ctx, cluster, "host1", []string{"cat"}, strings.NewReader("through stdin"))
	if err != nil || string(out) != "through stdin" {
		t.Errorf("cat on host1: %q, %v", out, err)
	}
	_, err = l.Run(ctx, cluster, "host1", []string{"sh", "-c", "echo broken >&2; exit 3"}, nil)
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("a failing command: %v, want an error carrying its output", err)
	}
	if _, err := l.Run(ctx, cluster, "host9", []string{"true"}, nil); err == nil || !strings.Contains(err.Error(), "weft up") {
		t.Errorf("a host without namespace: %v, want an error telling to build the lab", err)
	}
}
