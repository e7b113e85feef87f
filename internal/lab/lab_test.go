package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/naming"
)

// helperEnv makes the test binary act as a short-lived CLI that starts an
// agent and exits, to prove the agent outlives its caller.
const helperEnv = "WEFT_LAB_TEST_START_AGENT"

func TestMain(m *testing.M) {
	// StartAgent runs this binary as the host supervisor.
	if len(os.Args) > 1 && os.Args[1] == SupervisorCommand {
		os.Exit(superviseMain(os.Args[2:]))
	}
	if spec := os.Getenv(helperEnv); spec != "" {
		parts := strings.Split(spec, ",") // stateRoot,cluster,host
		l := &Lab{StateRoot: parts[0]}
		pid, err := l.StartAgent(context.Background(), parts[1], parts[2], "/bin/sleep", []string{"1000"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(pid)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// superviseMain is the test binary's `host-supervise`, as the weft CLI's.
func superviseMain(args []string) int {
	fs := flag.NewFlagSet(SupervisorCommand, flag.ContinueOnError)
	var cfg SupervisorConfig
	fs.StringVar(&cfg.Cluster, "cluster", "", "")
	fs.StringVar(&cfg.Host, "host", "", "")
	fs.StringVar(&cfg.StateRoot, "state-root", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Argv = fs.Args()
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := RunSupervisor(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab integration tests need root")
	}
}

func uniqueCluster(t *testing.T) string {
	t.Helper()
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "lt" + hex.EncodeToString(b)
}

// newLab returns a lab whose cluster is destroyed when the test ends,
// whatever happened.
func newLab(t *testing.T, cluster string) *Lab {
	t.Helper()
	l := &Lab{
		StateRoot: filepath.Join(t.TempDir(), "state"),
		Log:       slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	t.Cleanup(func() {
		if _, err := l.Destroy(context.Background(), cluster, false); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return l
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// linkMAC is the address of link in the named namespace.
func linkMAC(t *testing.T, ns, link string) string {
	t.Helper()
	out, err := run("ip", "-n", ns, "-br", "link", "show", link)
	f := strings.Fields(out)
	if err != nil || len(f) < 3 {
		t.Fatalf("ip -n %s link show %s = %q (%v)", ns, link, out, err)
	}
	return f[2]
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func ping(nsName, addr string) error {
	_, err := run("ip", "netns", "exec", nsName, "ping", "-c1", "-W1", addr)
	return err
}

func nsSysctl(t *testing.T, nsName, key string) string {
	t.Helper()
	out, err := run("ip", "netns", "exec", nsName, "cat", filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// linkState is what must not change on a second Ensure: ifindex and addresses.
type linkState struct {
	index int
	addrs string
}

func snapshotNetns(t *testing.T, nsName string) map[string]linkState {
	t.Helper()
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		t.Fatalf("opening %s: %v", nsName, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]linkState{}
	for _, link := range links {
		addrs, err := h.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, a := range addrs {
			s = append(s, a.IPNet.String())
		}
		slices.Sort(s)
		state[link.Attrs().Name] = linkState{link.Attrs().Index, strings.Join(s, ",")}
	}
	return state
}

// rootView is the root namespace's links and its routes into the lab range.
type rootView struct {
	links     map[int]string
	labRoutes []string
}

func snapshotRoot(t *testing.T) rootView {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	v := rootView{links: map[int]string{}}
	for _, l := range links {
		v.links[l.Attrs().Index] = l.Attrs().Name
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: syscall.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	_, labRange, _ := net.ParseCIDR("192.168.0.0/16")
	for _, r := range routes {
		if r.Dst != nil && labRange.Contains(r.Dst.IP) {
			v.labRoutes = append(v.labRoutes, r.String())
		}
	}
	return v
}

func netnsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// procAlive reports whether pid runs (a zombie does not).
func procAlive(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && st.state != "Z" && st.state != "X"
}

func procSession(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	sid, err := strconv.Atoi(fields[3])
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

func TestLabLifecycle(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	clusterA := uniqueCluster(t)
	labA := newLab(t, clusterA)
	specA := labCluster(clusterA, 3)

	rootBefore := snapshotRoot(t)
	// Watch the root namespace for any link appearing, even transiently.
	rootEvents := make(chan netlink.LinkUpdate, 256)
	stopEvents := make(chan struct{})
	if err := netlink.LinkSubscribe(rootEvents, stopEvents); err != nil {
		t.Fatal(err)
	}
	defer close(stopEvents)

	hosts, err := labA.Ensure(ctx, specA)
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 3 {
		t.Fatalf("Ensure returned %d hosts, want 3: %+v", len(hosts), hosts)
	}
	h3 := hosts["host3"]
	if h3.Netns != naming.HostNetns(clusterA, "host3") || h3.Address.String() != "192.168.3.10" || h3.Subnet != "c" || h3.MTU != 1500 {
		t.Errorf("host3 = %+v", h3)
	}
	ns1, ns2, ns3 := hosts["host1"].Netns, hosts["host2"].Netns, hosts["host3"].Netns

	t.Run("hosts in different subnets reach each other through the router", func(t *testing.T) {
		eventually(t, "host1 pings host3", 5*time.Second, func() error { return ping(ns1, "192.168.3.10") })
		eventually(t, "host3 pings host2", 5*time.Second, func() error { return ping(ns3, "192.168.2.10") })
		eventually(t, "host2 pings its router", 5*time.Second, func() error { return ping(ns2, "192.168.2.1") })
		out, err := run("ip", "-n", ns2, "route", "show", "default")
		if err != nil || !strings.Contains(out, "via 192.168.2.1 dev eth0") {
			t.Errorf("host2 default route = %q (%v), want via 192.168.2.1 dev eth0", out, err)
		}
	})

	// No packet ever waits for ARP on the underlay (neigh.go: such a packet's
	// error could be routed in the root namespace).
	t.Run("underlay neighbours are static both ways", func(t *testing.T) {
		router := naming.RouterNetns(clusterA)
		for i, ns := range []string{ns1, ns2, ns3} {
			gw := fmt.Sprintf("192.168.%d.1", i+1)
			hostMAC := linkMAC(t, ns, "eth0")
			out, err := run("ip", "-n", router, "neigh", "show", fmt.Sprintf("192.168.%d.10", i+1))
			if err != nil || !strings.Contains(out, "lladdr "+hostMAC) || !strings.Contains(out, "PERMANENT") {
				t.Errorf("router's neighbour for host%d = %q (%v), want lladdr %s PERMANENT", i+1, out, err, hostMAC)
			}
			out, err = run("ip", "-n", ns, "neigh", "show", gw)
			if want := gatewayMAC(netip.MustParseAddr(gw)).String(); err != nil || !strings.Contains(out, "lladdr "+want) || !strings.Contains(out, "PERMANENT") {
				t.Errorf("host%d's neighbour for its router %s = %q (%v), want lladdr %s PERMANENT", i+1, gw, out, err, want)
			}
		}
	})

	t.Run("sysctls are set per namespace", func(t *testing.T) {
		if v := nsSysctl(t, naming.RouterNetns(clusterA), "net.ipv4.ip_forward"); v != "1" {
			t.Errorf("router ip_forward = %s, want 1", v)
		}
		if v := nsSysctl(t, ns1, "net.ipv4.ip_forward"); v != "1" {
			t.Errorf("host1 ip_forward = %s, want 1", v)
		}
		if v := nsSysctl(t, ns1, "net.ipv4.conf.all.rp_filter"); v != "2" {
			t.Errorf("host1 rp_filter = %s, want 2 (loose)", v)
		}
		if _, err := os.Stat("/proc/sys/net/bridge"); err == nil {
			if v := nsSysctl(t, ns1, "net.bridge.bridge-nf-call-iptables"); v != "0" {
				t.Errorf("host1 bridge-nf-call-iptables = %s, want 0 (bridged frames skip the IP hooks)", v)
			}
		}
	})

	t.Run("the root namespace gets no link and no lab route", func(t *testing.T) {
		after := snapshotRoot(t)
		for idx, name := range after.links {
			if _, had := rootBefore.links[idx]; !had {
				t.Errorf("new link %s (index %d) in the root namespace", name, idx)
			}
		}
		if !slices.Equal(rootBefore.labRoutes, after.labRoutes) {
			t.Errorf("root routes into 192.168.0.0/16 changed: before %v, after %v", rootBefore.labRoutes, after.labRoutes)
		}
		timeout := time.After(200 * time.Millisecond)
		for drained := false; !drained; {
			select {
			case u := <-rootEvents:
				if _, had := rootBefore.links[int(u.Index)]; !had && u.Header.Type == syscall.RTM_NEWLINK {
					t.Errorf("link %s (index %d) appeared in the root namespace during Ensure", u.Attrs().Name, u.Index)
				}
			case <-timeout:
				drained = true
			}
		}
	})

	t.Run("a second Ensure changes no ifindex and no address", func(t *testing.T) {
		names := []string{naming.RouterNetns(clusterA), ns1, ns2, ns3}
		before := map[string]map[string]linkState{}
		for _, n := range names {
			before[n] = snapshotNetns(t, n)
		}
		if _, err := labA.Ensure(ctx, specA); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			after := snapshotNetns(t, n)
			if fmt.Sprint(after) != fmt.Sprint(before[n]) {
				t.Errorf("namespace %s changed:\nbefore %v\nafter  %v", n, before[n], after)
			}
		}
	})

	t.Run("Ensure repairs a removed eth0 and a stray address", func(t *testing.T) {
		if _, err := run("ip", "-n", ns2, "link", "del", "eth0"); err != nil {
			t.Fatal(err)
		}
		if _, err := run("ip", "-n", naming.RouterNetns(clusterA), "addr", "add", "192.168.1.99/24", "dev", "s-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := labA.Ensure(ctx, specA); err != nil {
			t.Fatal(err)
		}
		eventually(t, "host1 pings host2 again", 5*time.Second, func() error { return ping(ns1, "192.168.2.10") })
		router := snapshotNetns(t, naming.RouterNetns(clusterA))
		if got := router["s-a"].addrs; got != "" {
			t.Errorf("router bridge s-a addresses = %q, want none (the router's address is on g-a)", got)
		}
		if got := router["g-a"].addrs; got != "192.168.1.1/24" {
			t.Errorf("router gateway veth g-a addresses = %q, want only 192.168.1.1/24", got)
		}
	})

	t.Run("Ensure cuts off hosts and subnets that left the file", func(t *testing.T) {
		smaller := labCluster(clusterA, 2)
		if _, err := labA.Ensure(ctx, smaller); err != nil {
			t.Fatal(err)
		}
		router := snapshotNetns(t, naming.RouterNetns(clusterA))
		for _, link := range []string{"s-c", "g-c", "p-c"} {
			if _, ok := router[link]; ok {
				t.Errorf("link %s of the removed subnet is still in the router", link)
			}
		}
		if _, ok := router[hostVethName(clusterA, "host3")]; ok {
			t.Error("router link of the removed host3 is still there")
		}
		if err := ping(ns1, "192.168.3.10"); err == nil {
			t.Error("host1 still reaches the removed host3")
		}
		if _, err := labA.Ensure(ctx, specA); err != nil {
			t.Fatal(err)
		}
		eventually(t, "host1 pings the restored host3", 5*time.Second, func() error { return ping(ns1, "192.168.3.10") })
	})

	var agentPid int
	t.Run("StartAgent runs the agent inside the host namespace", func(t *testing.T) {
		pid, err := labA.StartAgent(ctx, clusterA, "host1", "/bin/sleep", []string{"1000"})
		if err != nil {
			t.Fatal(err)
		}
		agentPid = pid
		if got, want := netnsInode(t, fmt.Sprintf("/proc/%d/ns/net", pid)), netnsInode(t, netnsPath(ns1)); got != want {
			t.Errorf("agent netns inode %d, want host1's %d", got, want)
		}
		if sid := procSession(t, pid); sid != pid {
			t.Errorf("agent session %d, want its own (%d)", sid, pid)
		}
		pids, err := cgroup.Pids(naming.CgroupRelPath(clusterA, "host1", "agent"))
		if err != nil || !slices.Contains(pids, pid) {
			t.Errorf("agent cgroup holds %v (%v), want %d", pids, err, pid)
		}
		if _, err := os.Stat(filepath.Join(naming.HostStateDir(labA.StateRoot, clusterA, "host1"), "agent.log")); err != nil {
			t.Errorf("agent log: %v", err)
		}
		if got, alive := labA.AgentPid(clusterA, "host1"); got != pid || !alive {
			t.Errorf("AgentPid = %d, %v; want %d, true", got, alive, pid)
		}
		again, err := labA.StartAgent(ctx, clusterA, "host1", "/bin/sleep", []string{"1000"})
		if err != nil || again != pid {
			t.Errorf("second StartAgent = %d, %v; want the running %d", again, err, pid)
		}
		if _, alive := labA.AgentPid(clusterA, "host2"); alive {
			t.Error("AgentPid reports an agent for host2, which has none")
		}
	})

	t.Run("the supervisor restarts a killed agent and a new one adopts a running agent", func(t *testing.T) {
		supPid, alive := labA.SupervisorPid(clusterA, "host1")
		if !alive {
			t.Fatal("no supervisor runs for host1")
		}
		if got, want := netnsInode(t, fmt.Sprintf("/proc/%d/ns/net", supPid)), netnsInode(t, netnsPath(ns1)); got != want {
			t.Errorf("supervisor netns inode %d, want host1's %d", got, want)
		}
		if pids, err := cgroup.Pids(naming.CgroupRelPath(clusterA, "host1", supervisorName)); err != nil || !slices.Equal(pids, []int{supPid}) {
			t.Errorf("supervisor cgroup holds %v (%v), want %d", pids, err, supPid)
		}
		if err := syscall.Kill(agentPid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var restarted int
		eventually(t, "a new agent recorded", 2*time.Second, func() error {
			pid, alive := labA.AgentPid(clusterA, "host1")
			if !alive || pid == agentPid {
				return fmt.Errorf("agent pid %d alive %v", pid, alive)
			}
			restarted = pid
			return nil
		})
		if got, want := netnsInode(t, fmt.Sprintf("/proc/%d/ns/net", restarted)), netnsInode(t, netnsPath(ns1)); got != want {
			t.Errorf("restarted agent netns inode %d, want host1's %d", got, want)
		}
		if pids, err := cgroup.Pids(naming.CgroupRelPath(clusterA, "host1", "agent")); err != nil || !slices.Equal(pids, []int{restarted}) {
			t.Errorf("agent cgroup holds %v (%v), want only %d", pids, err, restarted)
		}
		supLog := filepath.Join(naming.HostStateDir(labA.StateRoot, clusterA, "host1"), supervisorName+".log")
		eventually(t, "the restart logged with the exit status", 2*time.Second, func() error {
			b, _ := os.ReadFile(supLog)
			if !strings.Contains(string(b), "agent exited") || !strings.Contains(string(b), "signal: killed") {
				return fmt.Errorf("supervisor log:\n%s", b)
			}
			return nil
		})

		// A dead supervisor is replaced by StartAgent; the new one watches
		// the running agent instead of starting a second one, and restarts
		// it in turn.
		if err := syscall.Kill(supPid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the supervisor is gone", 2*time.Second, func() error {
			if procAlive(supPid) {
				return fmt.Errorf("pid %d still runs", supPid)
			}
			return nil
		})
		again, err := labA.StartAgent(ctx, clusterA, "host1", "/bin/sleep", []string{"1000"})
		if err != nil || again != restarted {
			t.Fatalf("StartAgent with only the agent running = %d, %v; want the running %d", again, err, restarted)
		}
		newSup, alive := labA.SupervisorPid(clusterA, "host1")
		if !alive || newSup == supPid {
			t.Fatalf("supervisor %d alive %v, want a new one", newSup, alive)
		}
		if err := syscall.Kill(restarted, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the adopted agent restarted", 2*time.Second, func() error {
			pid, alive := labA.AgentPid(clusterA, "host1")
			if !alive || pid == restarted {
				return fmt.Errorf("agent pid %d alive %v", pid, alive)
			}
			agentPid = pid
			return nil
		})
	})

	var orphanPid int
	t.Run("the agent outlives the process that started it", func(t *testing.T) {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join([]string{labA.StateRoot, clusterA, "host2"}, ","))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helper: %v: %s", err, out)
		}
		orphanPid, err = strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("helper printed %q", out)
		}
		if !procAlive(orphanPid) {
			t.Fatalf("agent %d died with its caller", orphanPid)
		}
		if got, alive := labA.AgentPid(clusterA, "host2"); got != orphanPid || !alive {
			t.Errorf("AgentPid = %d, %v; want %d, true", got, alive, orphanPid)
		}
		if got, want := netnsInode(t, fmt.Sprintf("/proc/%d/ns/net", orphanPid)), netnsInode(t, netnsPath(ns2)); got != want {
			t.Errorf("agent netns inode %d, want host2's %d", got, want)
		}
	})

	// A second cluster with the same addresses, whose host namespace
	// creation was interrupted (placeholder file, never mounted).
	clusterB := uniqueCluster(t)
	for clusterB == clusterA {
		clusterB = uniqueCluster(t)
	}
	labB := newLab(t, clusterB)
	specB := labCluster(clusterB, 2)
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	placeholder := netnsPath(naming.HostNetns(clusterB, "host2"))
	if err := os.WriteFile(placeholder, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(placeholder) })
	if _, err := labB.Ensure(ctx, specB); err != nil {
		t.Fatal(err)
	}
	bHost1 := naming.HostNetns(clusterB, "host1")
	eventually(t, "cluster B host2 (from a placeholder) pings host1", 5*time.Second, func() error {
		return ping(naming.HostNetns(clusterB, "host2"), "192.168.1.10")
	})
	agentB, err := labB.StartAgent(ctx, clusterB, "host1", "/bin/sleep", []string{"1000"})
	if err != nil {
		t.Fatal(err)
	}
	if exists, err := labA.Exists(clusterA); err != nil || !exists {
		t.Fatalf("Exists(%s) = %v, %v before Destroy", clusterA, exists, err)
	}

	// The runtime may add memory cgroups; Destroy must remove those too.
	memoryCgroup := filepath.Join(cgroup.Root, "memory", naming.CgroupRelPath(clusterA, "host1", "web-1"))
	if err := os.MkdirAll(memoryCgroup, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cgroup.RemoveFrom("memory", naming.CgroupRelPath(clusterA)) })

	t.Run("Destroy removes one cluster entirely and nothing of another", func(t *testing.T) {
		removed, err := labA.Destroy(ctx, clusterA, false)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(removed.Namespaces)
		want := []string{naming.HostNetns(clusterA, "host1"), naming.HostNetns(clusterA, "host2"), naming.HostNetns(clusterA, "host3"), naming.RouterNetns(clusterA)}
		if !slices.Equal(removed.Namespaces, want) {
			t.Errorf("removed namespaces %v, want %v", removed.Namespaces, want)
		}
		if removed.Processes != 4 || !removed.StateDir {
			t.Errorf("removed = %+v, want 4 processes (2 agents, 2 supervisors) and the state dir", removed)
		}
		if names, _ := listNamedNetns(naming.NetnsPrefix(clusterA)); len(names) != 0 {
			t.Errorf("namespaces left: %v", names)
		}
		if out, _ := run("ip", "netns", "list"); strings.Contains(out, naming.NetnsPrefix(clusterA)) {
			t.Errorf("ip netns list still shows cluster A:\n%s", out)
		}
		eventually(t, "agents of cluster A are gone", 5*time.Second, func() error {
			for _, pid := range []int{agentPid, orphanPid} {
				if procAlive(pid) {
					return fmt.Errorf("pid %d still runs", pid)
				}
			}
			return nil
		})
		if _, err := os.Stat(filepath.Join(cgroup.Root, cgroup.Controller, naming.CgroupRelPath(clusterA))); !os.IsNotExist(err) {
			t.Errorf("cgroup of cluster A still there (%v)", err)
		}
		if _, err := os.Stat(filepath.Join(cgroup.Root, "memory", naming.CgroupRelPath(clusterA))); !os.IsNotExist(err) {
			t.Errorf("memory cgroup of cluster A still there (%v)", err)
		}
		if _, err := os.Stat(naming.StateDir(labA.StateRoot, clusterA)); !os.IsNotExist(err) {
			t.Errorf("state dir of cluster A still there (%v)", err)
		}
		if exists, err := labA.Exists(clusterA); err != nil || exists {
			t.Errorf("Exists(%s) = %v, %v after Destroy", clusterA, exists, err)
		}
		if _, alive := labA.AgentPid(clusterA, "host1"); alive {
			t.Error("AgentPid still reports an agent")
		}

		if exists, err := labB.Exists(clusterB); err != nil || !exists {
			t.Errorf("cluster B: Exists = %v, %v", exists, err)
		}
		if got, alive := labB.AgentPid(clusterB, "host1"); got != agentB || !alive {
			t.Errorf("cluster B agent: AgentPid = %d, %v; want %d, true", got, alive, agentB)
		}
		if err := ping(bHost1, "192.168.2.10"); err != nil {
			t.Errorf("cluster B lost its underlay: %v", err)
		}

		again, err := labA.Destroy(ctx, clusterA, false)
		if err != nil || len(again.Namespaces) != 0 || again.Processes != 0 || again.StateDir {
			t.Errorf("second Destroy = %+v, %v; want nothing removed", again, err)
		}
	})

	t.Run("Destroy keeps volumes when asked", func(t *testing.T) {
		volume := naming.VolumeDir(labB.StateRoot, clusterB, "db-1", "data")
		if err := os.MkdirAll(volume, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(volume, "rows"), []byte("42"), 0o644); err != nil {
			t.Fatal(err)
		}
		// A container's view of the volume, bind-mounted inside the state
		// dir: removing the container's directory must not reach through it.
		mountPoint := filepath.Join(naming.ContainerStateDir(labB.StateRoot, clusterB, "host1", "db-1"), "data")
		if err := os.MkdirAll(mountPoint, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount(volume, mountPoint, "", syscall.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(mountPoint, syscall.MNT_DETACH) })
		removed, err := labB.Destroy(ctx, clusterB, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(removed.Namespaces) != 3 || removed.Processes != 2 || !removed.StateDir {
			t.Errorf("removed = %+v, want 3 namespaces, 2 processes (agent, supervisor), the state dir", removed)
		}
		if b, err := os.ReadFile(filepath.Join(volume, "rows")); err != nil || string(b) != "42" {
			t.Errorf("volume content = %q, %v; want it kept", b, err)
		}
		if _, err := os.Stat(naming.HostStateDir(labB.StateRoot, clusterB, "host1")); !os.IsNotExist(err) {
			t.Errorf("host state of cluster B still there (%v)", err)
		}
		eventually(t, "agent of cluster B is gone", 5*time.Second, func() error {
			if procAlive(agentB) {
				return fmt.Errorf("pid %d still runs", agentB)
			}
			return nil
		})
	})
}

func TestStartAgentWithoutNamespace(t *testing.T) {
	requireRoot(t)
	cluster := uniqueCluster(t)
	l := newLab(t, cluster)
	_, err := l.StartAgent(context.Background(), cluster, "host1", "/bin/sleep", []string{"1000"})
	if err == nil || !strings.Contains(err.Error(), "build the lab first") {
		t.Fatalf("got %v, want an error telling to build the lab first", err)
	}
	if pids, _ := cgroup.Pids(naming.CgroupRelPath(cluster)); len(pids) != 0 {
		t.Errorf("processes started anyway: %v", pids)
	}
}

func TestEnsureChangesMTUInPlace(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cluster := uniqueCluster(t)
	l := newLab(t, cluster)
	c := labCluster(cluster, 2)
	if _, err := l.Ensure(ctx, c); err != nil {
		t.Fatal(err)
	}
	ns1 := naming.HostNetns(cluster, "host1")
	before := snapshotNetns(t, ns1)["eth0"]

	c.Network.MTU = 9000
	hosts, err := l.Ensure(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if hosts["host1"].MTU != 9000 {
		t.Errorf("HostInfo MTU = %d, want 9000", hosts["host1"].MTU)
	}
	for _, check := range []struct{ ns, link string }{
		{ns1, "eth0"},
		{naming.RouterNetns(cluster), "s-a"},
		{naming.RouterNetns(cluster), "g-a"},
		{naming.RouterNetns(cluster), "p-a"},
		{naming.RouterNetns(cluster), hostVethName(cluster, "host2")},
	} {
		out, err := run("ip", "-n", check.ns, "-o", "link", "show", check.link)
		if err != nil || !strings.Contains(out, " mtu 9000 ") {
			t.Errorf("%s in %s: %q (%v), want mtu 9000", check.link, check.ns, out, err)
		}
	}
	if after := snapshotNetns(t, ns1)["eth0"]; after != before {
		t.Errorf("eth0 was recreated or readdressed for an MTU change: before %+v, after %+v", before, after)
	}
	// A full-size unfragmentable packet crosses the router at the new MTU.
	eventually(t, "host1 pings host2 with 8972-byte payloads, DF set", 5*time.Second, func() error {
		_, err := run("ip", "netns", "exec", ns1, "ping", "-c1", "-W1", "-M", "do", "-s", "8972", "192.168.2.10")
		return err
	})
}
