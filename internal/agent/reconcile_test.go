package agent

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/firewall"
	"github.com/weft-dev/weft/internal/image"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// reconcileHeader is the cluster of the reconcile tests, from host1's
// side: host1 (192.168.1.10) runs the agent under test, host2
// (192.168.2.10) and host3 (192.168.2.11) the other containers.
const reconcileHeader = `version: 1
name: seams
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}
overlay: {vni: 42, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a, roles: [manager]}
  - {name: host2, subnet: b, roles: [worker]}
  - {name: host3, subnet: b, roles: [worker]}
`

// reconcileServices are the services of most steps.
const reconcileServices = `services:
  web: {command: [sleep, infinity], stop_grace: 3s}
  db: {command: [sleep, infinity]}
  api: {command: [sleep, infinity]}
`

// reconcileWorld is one host as the reconcile tests drive it: an agent
// on fakes that outlive it, so a step can restart the agent on the
// kernel, processes and store the last one left.
type reconcileWorld struct {
	t      *testing.T
	ops    *opLog
	kernel *fakeKernel
	nft    *fakeNFT
	procs  *fakeSupervisor
	store  *fakeStore
	root   string
	a      *Agent
	last   applied
}

func newReconcileWorld(t *testing.T) *reconcileWorld {
	ops := &opLog{}
	w := &reconcileWorld{
		t:      t,
		ops:    ops,
		kernel: newFakeKernel(ops, naming.ContainerNetns("seams", "host1", "")),
		nft:    &fakeNFT{log: ops, tables: map[firewall.Family]firewall.State{}},
		procs:  newFakeSupervisor(ops),
		store:  &fakeStore{log: ops, assign: map[string]model.Assignment{}, status: map[string]model.ContainerStatus{}},
		root:   t.TempDir(),
	}
	w.startAgent()
	t.Cleanup(w.stopAgent)
	return w
}

// startAgent starts a new agent on host1, knowing nothing of what an
// earlier one did but what it finds on the host and in the store.
func (w *reconcileWorld) startAgent() {
	log := slog.New(slog.DiscardHandler)
	c := parseReconcileFile(w.t, reconcileServices)
	self, _ := c.HostByName("host1")
	w.a = &Agent{
		cfg:        Config{Cluster: "seams", Host: "host1", StateRoot: w.root, Exe: "/usr/local/bin/weft", Log: log},
		log:        log,
		self:       self,
		kernel:     w.kernel,
		rt:         w.procs,
		fw:         firewall.Firewall{Kernel: w.nft},
		images:     &image.Store{Root: filepath.Join(w.root, "images"), Log: log},
		containers: map[string]*containerRun{},
		pulled:     map[string]string{},
		kick:       make(chan struct{}, 1),
	}
	w.last = applied{}
}

// stopAgent ends the agent's supervisors, leaving the processes running
// (their records stay), as a dying agent does.
func (w *reconcileWorld) stopAgent() {
	w.a.stopSupervisors()
	w.waitSupervised(nil)
}

// waitSupervised waits until the fake runtime supervises exactly want.
func (w *reconcileWorld) waitSupervised(want []string) {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := w.procs.supervised()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("supervised containers = %q, want %q", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// reconcile runs one pass on the file with these services and these
// assignments, and returns the operations it made.
func (w *reconcileWorld) reconcile(services string, assign []model.Assignment, full bool) []string {
	w.t.Helper()
	c := parseReconcileFile(w.t, services)
	w.store.mu.Lock()
	w.store.assign = map[string]model.Assignment{}
	for _, as := range assign {
		w.store.assign[as.Container] = as
	}
	snap := store.Snapshot{Spec: c, Assign: w.store.assign, Status: maps.Clone(w.store.status)}
	w.store.mu.Unlock()
	if err := w.a.reconcileOnce(context.Background(), w.store, snap, &w.last, full); err != nil {
		w.t.Fatalf("reconciling: %v", err)
	}
	w.a.mu.Lock()
	running := slices.Sorted(maps.Keys(w.a.containers))
	w.a.mu.Unlock()
	w.waitSupervised(running)
	return w.ops.take()
}

func parseReconcileFile(t *testing.T, services string) *spec.Cluster {
	t.Helper()
	c, err := spec.Parse([]byte(reconcileHeader+services), "/srv")
	if err != nil {
		t.Fatalf("parsing the test file: %v", err)
	}
	return c
}

// at is an assignment: container name-index on host at overlay address ip.
func at(container, host, ip string) model.Assignment {
	i := strings.LastIndex(container, "-")
	index, _ := strconv.Atoi(container[i+1:])
	addr := netip.MustParseAddr(ip)
	return model.Assignment{Container: container, Service: container[:i], Index: index, Host: host, IP: addr, MAC: naming.MACFromIP(addr).String()}
}

// healthyStatus is a status another agent wrote: running and healthy on host.
func healthyStatus(as model.Assignment, pid int) model.ContainerStatus {
	return model.ContainerStatus{
		Container: as.Container, Service: as.Service, Host: as.Host, IP: as.IP, MAC: as.MAC,
		Netns: naming.ContainerNetns("seams", as.Host, as.Container),
		State: model.StateRunning, Health: model.HealthHealthy, Pid: pid,
	}
}

// reconcileStep is one reconcile pass of a test.
type reconcileStep struct {
	services string                  // the file's services; reconcileServices when empty
	assign   []model.Assignment      // the placement
	reported []model.ContainerStatus // statuses written meanwhile (by other hosts, or by host1 before its agent died)
	restart  bool                    // the agent died before this pass: a new one, on the host as the old one left it
	full     bool                    // the periodic full pass
	want     []string                // the operations of the pass, in order
}

// firewallLocalChanged is the firewall's operation when the containers of
// host1 changed: the bridge table has the containers' rules, the inet
// table only the hosts'.
const firewallLocalChanged = "firewall write bridge weft-fw"

// These are the operations of the first pass of host1 running web-1 with
// db-1 on host2 (the first step of most tests).
var (
	firstAssign = []model.Assignment{at("web-1", "host1", "10.10.0.5"), at("db-1", "host2", "10.10.0.6")}
	firstOps    = []string{
		"firewall write inet weft-fw, write bridge weft-fw",
		"ensure-host vni=42 mtu=1450 br-vxlan 10.10.255.1/16",
		"daemon resolver",
		"peers +10.10.0.6@192.168.2.10",
		"netns web-1",
		"attach web-1 10.10.0.5/16",
		"status web-1 starting",
		// reportStatuses compares with the pass's snapshot, which predates
		// the start: the status goes out a second time.
		"status web-1 starting",
	}
	first = reconcileStep{assign: firstAssign, want: firstOps}
)

func TestReconcile(t *testing.T) {
	cases := []struct {
		name  string
		steps []reconcileStep
	}{
		{"first pass on an empty host: firewall, device, resolver, peers, then the container", []reconcileStep{first}},
		{"an unchanged second pass does nothing", []reconcileStep{first, {assign: firstAssign}}},
		{"a full pass checks the kernel and rewrites nothing", []reconcileStep{first, {assign: firstAssign, full: true, want: []string{
			"ensure-host vni=42 mtu=1450 br-vxlan 10.10.255.1/16",
			"daemon resolver",
			"peers unchanged",
			"attach web-1 10.10.0.5/16",
		}}}},
		{"a new container on another host adds exactly one peer", []reconcileStep{first, {
			assign: append(slices.Clone(firstAssign), at("api-1", "host3", "10.10.0.7")),
			want:   []string{"peers +10.10.0.7@192.168.2.11"},
		}}},
		{"a container gone from another host removes its peer", []reconcileStep{first, {
			assign: firstAssign[:1],
			want:   []string{"peers -10.10.0.6@192.168.2.10"},
		}}},
		{"a container moved away while this host was cut off stops and is detached before anything else", []reconcileStep{first, {
			assign: []model.Assignment{at("web-1", "host2", "10.10.0.5"), at("db-1", "host2", "10.10.0.6"), at("api-1", "host1", "10.10.0.7")},
			want: []string{
				// At once (it holds the new instance's address), once by
				// its supervisor and once more by name.
				"stop web-1 grace=0s",
				"stop web-1 grace=0s",
				"detach web-1",
				"withdraw web-1: kept, assigned to host2",
				firewallLocalChanged,
				"peers +10.10.0.5@192.168.2.10",
				"netns api-1",
				"attach api-1 10.10.0.7/16",
				"status api-1 starting",
				"status api-1 starting",
			},
		}}},
		{"a container moved away while the agent was down stops and is detached before anything else", []reconcileStep{first, {
			restart: true,
			assign:  []model.Assignment{at("web-1", "host2", "10.10.0.5"), at("db-1", "host2", "10.10.0.6"), at("api-1", "host1", "10.10.0.7")},
			want: []string{
				"stop web-1 grace=0s",
				"detach web-1",
				"withdraw web-1: kept, assigned to host2",
				firewallLocalChanged,
				"ensure-host vni=42 mtu=1450 br-vxlan 10.10.255.1/16",
				"daemon resolver",
				"peers +10.10.0.5@192.168.2.10",
				"netns api-1",
				"attach api-1 10.10.0.7/16",
				"status api-1 starting",
				"status api-1 starting",
			},
		}}},
		{"a changed definition restarts the container on its link", []reconcileStep{first, {
			services: strings.Replace(reconcileServices, "web: {", "web: {env: {MODE: fast}, ", 1),
			assign:   firstAssign,
			want: []string{
				"stop web-1 grace=3s",
				"netns web-1",
				"attach web-1 10.10.0.5/16",
				"status web-1 starting",
			},
		}}},
		{"a new address restarts the container on a new link", []reconcileStep{first, {
			assign: []model.Assignment{at("web-1", "host1", "10.10.0.8"), at("db-1", "host2", "10.10.0.6")},
			want: []string{
				firewallLocalChanged,
				"stop web-1 grace=3s",
				"detach web-1",
				"netns web-1",
				"attach web-1 10.10.0.8/16",
				"status web-1 starting",
				"status web-1 starting",
			},
		}}},
		{"a removed container is stopped, detached and its status withdrawn", []reconcileStep{first, {
			services: strings.Replace(reconcileServices, "  web: {command: [sleep, infinity], stop_grace: 3s}\n", "", 1),
			assign:   firstAssign[1:],
			want: []string{
				"stop web-1 grace=10s",
				"stop web-1 grace=10s",
				"detach web-1",
				"withdraw web-1",
				firewallLocalChanged,
			},
		}}},
		{"a container waits for its dependencies, then starts", []reconcileStep{
			{
				services: strings.Replace(reconcileServices, "api: {", "api: {depends_on: [db], ", 1),
				assign:   []model.Assignment{at("api-1", "host1", "10.10.0.7"), at("db-1", "host2", "10.10.0.6")},
				want: []string{
					"firewall write inet weft-fw, write bridge weft-fw",
					"ensure-host vni=42 mtu=1450 br-vxlan 10.10.255.1/16",
					"daemon resolver",
					"peers +10.10.0.6@192.168.2.10",
					"status api-1 waiting",
				},
			},
			{
				services: strings.Replace(reconcileServices, "api: {", "api: {depends_on: [db], ", 1),
				assign:   []model.Assignment{at("api-1", "host1", "10.10.0.7"), at("db-1", "host2", "10.10.0.6")},
				reported: []model.ContainerStatus{healthyStatus(at("db-1", "host2", "10.10.0.6"), 300)},
				want: []string{
					"netns api-1",
					"attach api-1 10.10.0.7/16",
					"status api-1 starting",
					"status api-1 starting",
				},
			},
		}},
		{"a restarted agent adopts a ready container without reporting it again", []reconcileStep{first, {
			restart:  true,
			assign:   firstAssign,
			reported: []model.ContainerStatus{healthyStatus(at("web-1", "host1", "10.10.0.5"), 100)},
			want: []string{
				"ensure-host vni=42 mtu=1450 br-vxlan 10.10.255.1/16",
				"daemon resolver",
				"peers unchanged",
				"netns web-1",
				"attach web-1 10.10.0.5/16",
			},
		}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newReconcileWorld(t)
			for i, step := range tc.steps {
				if step.restart {
					w.stopAgent()
					w.startAgent()
				}
				w.store.mu.Lock()
				for _, st := range step.reported {
					w.store.status[st.Container] = st
				}
				w.store.mu.Unlock()
				services := step.services
				if services == "" {
					services = reconcileServices
				}
				got := w.reconcile(services, step.assign, step.full)
				if !slices.Equal(got, step.want) {
					t.Fatalf("pass %d made\n\t%s\nwant\n\t%s", i+1, strings.Join(got, "\n\t"), strings.Join(step.want, "\n\t"))
				}
			}
		})
	}
}
