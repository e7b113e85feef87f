package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

func hosts(names ...string) []HostStatus {
	var out []HostStatus
	for _, n := range names {
		out = append(out, HostStatus{Name: n, Agent: "up"})
	}
	return out
}

func TestCombineTakesTheFirstStoreAnswerAndListsSilentAgents(t *testing.T) {
	fresh := Status{Cluster: "c", Applied: true, Source: "host2", Hosts: hosts("host1", "host2", "host3")}
	got, err := Combine("c", []AgentAnswer{
		{Host: "host1", Err: errors.New("context deadline exceeded")},
		{Host: "host2", Status: fresh},
		{Host: "host3", Status: Status{Cluster: "c", Stale: true, Source: "host3"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Stale || got.Source != "host2" {
		t.Fatalf("Combine chose %+v, want host2's store answer", got)
	}
	if len(got.Unreachable) != 1 || !strings.HasPrefix(got.Unreachable[0], "host1: agent not answering") {
		t.Fatalf("Unreachable = %q, want host1's agent only", got.Unreachable)
	}
}

func TestCombineWithoutQuorumMergesStaleCopiesAndLocalContainers(t *testing.T) {
	run := func(name, host string, pid int) model.ContainerStatus {
		return model.ContainerStatus{Container: name, Host: host, Pid: pid, State: model.StateRunning}
	}
	older := Status{Cluster: "c", Applied: true, Stale: true, StaleSeconds: 30, Source: "host1",
		Hosts:       hosts("host1", "host2", "host3"),
		Containers:  []model.ContainerStatus{run("a-1", "host1", 11), run("b-1", "host2", 20), run("c-1", "host3", 30)},
		Unreachable: []string{"store: not readable from host1: etcdserver: request timed out"}}
	newer := Status{Cluster: "c", Applied: true, Stale: true, StaleSeconds: 5, Source: "host3",
		Hosts:       hosts("host1", "host2", "host3"),
		Containers:  []model.ContainerStatus{run("a-1", "host1", 10), run("b-1", "host2", 20), run("c-1", "host3", 31), run("d-1", "host3", 40)},
		Unreachable: []string{"store: not readable from host3: context deadline exceeded"}}
	got, err := Combine("c", []AgentAnswer{
		{Host: "host1", Status: older},
		{Host: "host2", Err: errors.New("context deadline exceeded")},
		{Host: "host3", Status: newer},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Stale || got.Source != "host3" || got.StaleSeconds != 5 {
		t.Fatalf("base = %s (stale %v, %vs), want host3's fresher copy", got.Source, got.Stale, got.StaleSeconds)
	}
	pids := map[string]int{}
	for _, c := range got.Containers {
		pids[c.Container] = c.Pid
	}
	// host1's own container comes from host1's agent, the rest from the copy.
	want := map[string]int{"a-1": 11, "b-1": 20, "c-1": 31, "d-1": 40}
	for name, pid := range want {
		if pids[name] != pid {
			t.Errorf("%s pid = %d, want %d (containers %v)", name, pids[name], pid, pids)
		}
	}
	agents := map[string]string{}
	for _, h := range got.Hosts {
		agents[h.Name] = h.Agent
	}
	if agents["host1"] != "up" || agents["host2"] != "down" || agents["host3"] != "up" {
		t.Errorf("host agents = %v, want host2 down, the others up", agents)
	}
	text := strings.Join(got.Unreachable, "\n")
	if !strings.Contains(text, "store: no quorum") || !strings.Contains(text, "host2: agent not answering") {
		t.Errorf("Unreachable = %q, want the store and host2", got.Unreachable)
	}
	// The input's slices are not changed.
	if older.Hosts[1].Agent != "up" || newer.Containers[0].Pid != 10 {
		t.Error("Combine changed its input")
	}
}

func TestCombineFailsWhenNoAgentAnswers(t *testing.T) {
	_, err := Combine("c", []AgentAnswer{{Host: "host1", Err: errors.New("refused")}})
	if err == nil || !strings.Contains(err.Error(), "no agent of cluster c answers") {
		t.Fatalf("err = %v", err)
	}
}

// An agent that accepts the connection and never answers (a frozen
// process) costs AskAll its deadline, not more.
func TestAskAllReturnsWithinItsDeadline(t *testing.T) {
	dir := t.TempDir()
	hung := filepath.Join(dir, "hung.sock")
	ln, err := net.Listen("unix", hung)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := make(chan struct{})
	defer close(release)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release })}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	start := time.Now()
	got := AskAll(context.Background(), map[string]string{"host1": hung, "host2": filepath.Join(dir, "missing.sock")}, 300*time.Millisecond)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("AskAll took %s", took)
	}
	if len(got) != 2 || got[0].Host != "host1" || got[0].Err == nil || got[1].Err == nil {
		t.Fatalf("answers = %+v, want two errors in host order", got)
	}
}

func TestCombineTakesEachHostsFirewallFromItsOwnAgent(t *testing.T) {
	answer := func(self string, dropped uint64) Status {
		hs := hosts("host1", "host2", "host3")
		for i := range hs {
			if hs[i].Name == self {
				hs[i].Firewall = &FirewallStatus{On: true, Dropped: map[string]uint64{"vxlan_foreign": dropped}}
			}
		}
		return Status{Cluster: "c", Applied: true, Source: self, Hosts: hs}
	}
	got, err := Combine("c", []AgentAnswer{
		{Host: "host1", Status: answer("host1", 1)},
		{Host: "host2", Status: answer("host2", 2)},
		{Host: "host3", Err: errors.New("context deadline exceeded")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint64{1, 2} {
		fw := got.Hosts[i].Firewall
		if fw == nil || !fw.On || fw.Dropped["vxlan_foreign"] != want {
			t.Errorf("%s firewall = %+v, want on with %d drops", got.Hosts[i].Name, fw, want)
		}
	}
	if got.Hosts[2].Firewall != nil {
		t.Errorf("host3's agent did not answer, yet its firewall is %+v", got.Hosts[2].Firewall)
	}
}

func TestClusterStatusNoCluster(t *testing.T) {
	_, err := ClusterStatus(context.Background(), t.TempDir(), "nosuch")
	var none *NoClusterError
	if !errors.As(err, &none) || none.Cluster != "nosuch" {
		t.Fatalf("ClusterStatus of a missing cluster: got %v, want a NoClusterError naming nosuch", err)
	}
}
