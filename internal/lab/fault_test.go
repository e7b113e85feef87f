package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/naming"
)

// TestCutCrashRestore: a cut stops traffic across the host's leg only; a
// crash also freezes the host's processes; Restore undoes both; Destroy
// removes a crashed host's frozen processes and its freezer cgroup.
func TestCutCrashRestore(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cluster := uniqueCluster(t)
	l := newLab(t, cluster)
	hosts, err := l.Ensure(ctx, labCluster(cluster, 3))
	if err != nil {
		t.Fatal(err)
	}
	ns1, ns2 := hosts["host1"].Netns, hosts["host2"].Netns
	eventually(t, "host1 pings host2", 5*time.Second, func() error { return ping(ns1, "192.168.2.10") })

	// A process of host2, in host2's cgroup as the agent and containers are.
	sleeper := exec.Command("ip", "netns", "exec", ns2, "sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	pid := sleeper.Process.Pid
	exited := make(chan struct{})
	go func() { _ = sleeper.Wait(); close(exited) }()
	t.Cleanup(func() { _ = sleeper.Process.Kill() })
	if err := cgroup.Join(naming.CgroupRelPath(cluster, "host2"), pid); err != nil {
		t.Fatal(err)
	}

	if err := l.Cut(ctx, cluster, "host2"); err != nil {
		t.Fatal(err)
	}
	if err := ping(ns1, "192.168.2.10"); err == nil {
		t.Fatal("host1 still reaches host2 across a cut")
	}
	if err := ping(ns1, "192.168.3.10"); err != nil {
		t.Errorf("a cut of host2 stopped host1 -> host3: %v", err)
	}
	if l.Frozen(cluster, "host2") {
		t.Error("a cut froze the host's processes")
	}
	if err := l.Heal(ctx, cluster, "host2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "host1 pings host2 after the heal", 5*time.Second, func() error { return ping(ns1, "192.168.2.10") })

	if err := l.Crash(ctx, cluster, "host2"); err != nil {
		t.Fatal(err)
	}
	if !l.Frozen(cluster, "host2") {
		t.Fatal("host2 is not frozen after Crash")
	}
	if err := ping(ns1, "192.168.2.10"); err == nil {
		t.Fatal("host1 still reaches a crashed host2")
	}
	if err := l.Restore(ctx, cluster, "host2"); err != nil {
		t.Fatal(err)
	}
	if l.Frozen(cluster, "host2") {
		t.Fatal("host2 still frozen after Restore")
	}
	eventually(t, "host1 pings host2 after Restore", 5*time.Second, func() error { return ping(ns1, "192.168.2.10") })
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("host2's process did not survive crash and restore: %v", err)
	}

	// Destroy of a crashed host: its frozen process dies and nothing of the
	// freezer cgroup is left.
	if err := l.Crash(ctx, cluster, "host2"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Destroy(ctx, cluster, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the frozen process survived Destroy")
	}
	if _, err := os.Stat(filepath.Join(cgroup.Root, cgroup.Freezer, naming.CgroupRelPath(cluster))); !os.IsNotExist(err) {
		t.Errorf("freezer cgroup of the cluster left behind: %v", err)
	}
}

func TestFaultsNameTheirTarget(t *testing.T) {
	l := &Lab{StateRoot: t.TempDir()}
	if err := l.Cut(context.Background(), "nosuchcluster", "host1"); err == nil {
		t.Error("Cut of a missing cluster succeeded")
	}
	if err := l.Crash(context.Background(), "x", "Bad/Host"); err == nil {
		t.Error("Crash accepted an invalid host name")
	}
}
