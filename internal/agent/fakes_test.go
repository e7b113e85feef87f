package agent

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/firewall"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/overlay"
	"github.com/weft-dev/weft/internal/runtime"
	"github.com/weft-dev/weft/internal/store"
)

// The fakes below stand for what the agent drives on its host: the
// network namespace (kernel and the firewall's nftables), the processes
// (supervisor) and the store. Each keeps the state the real one would and
// writes every operation it is asked for, as one line, to a shared opLog:
// the reconcile tests compare that log with the operations a pass must
// make, in their order. None of them touches the machine.

// opLog is the ordered operations of the fakes.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, fmt.Sprintf(format, args...))
}

// take returns the operations logged since the last take.
func (l *opLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := l.ops
	l.ops = nil
	return ops
}

// fakeKernel is a host's network namespace as kernel: its peer entries
// and container namespaces in maps. Namespaces are logged by their
// container's part of the name (the part after nsPrefix).
type fakeKernel struct {
	log      *opLog
	nsPrefix string
	peers    map[netip.Addr]overlay.Peer
	netns    map[string]bool
}

func newFakeKernel(log *opLog, nsPrefix string) *fakeKernel {
	return &fakeKernel{log: log, nsPrefix: nsPrefix, peers: map[netip.Addr]overlay.Peer{}, netns: map[string]bool{}}
}

// Underlay is not known to the fake: the agent falls back to the lab's eth0
// with the file's MTU, as it does where the lookup fails.
func (k *fakeKernel) Underlay(addr netip.Addr) (underlayLink, error) {
	return underlayLink{}, fmt.Errorf("the fake kernel has no interfaces (asked for %s)", addr)
}

func (k *fakeKernel) EnsureHost(hc overlay.HostConfig) error {
	k.log.add("ensure-host vni=%d mtu=%d %s %s", hc.VNI, hc.MTU, hc.Bridge, hc.BridgeAddr)
	return nil
}

// SyncPeers logs the changes it makes: +ip@host added, ~ip@host replaced,
// -ip@host deleted.
func (k *fakeKernel) SyncPeers(_ overlay.HostConfig, peers []overlay.Peer) (overlay.SyncResult, error) {
	var res overlay.SyncResult
	var changes []string
	want := map[netip.Addr]overlay.Peer{}
	for _, p := range peers {
		want[p.IP] = p
		have, ok := k.peers[p.IP]
		switch {
		case !ok:
			res.Added++
			changes = append(changes, fmt.Sprintf("+%s@%s", p.IP, p.Host))
		case !samePeer(have, p):
			res.Replaced++
			changes = append(changes, fmt.Sprintf("~%s@%s", p.IP, p.Host))
		}
	}
	for _, ip := range slices.SortedFunc(maps.Keys(k.peers), netip.Addr.Compare) {
		if _, ok := want[ip]; !ok {
			res.Deleted++
			changes = append(changes, fmt.Sprintf("-%s@%s", ip, k.peers[ip].Host))
		}
	}
	k.peers = want
	if len(changes) == 0 {
		changes = []string{"unchanged"}
	}
	k.log.add("peers %s", strings.Join(changes, " "))
	return res, nil
}

func (k *fakeKernel) EnsureContainerNetns(name string) error {
	k.log.add("netns %s", strings.TrimPrefix(name, k.nsPrefix))
	k.netns[name] = true
	return nil
}

// AttachContainer fails, as the real one does, when the container's
// namespace does not exist.
func (k *fakeKernel) AttachContainer(_ overlay.HostConfig, link overlay.ContainerLink) error {
	k.log.add("attach %s %s", link.Container, link.Addr)
	if !k.netns[link.Netns] {
		return fmt.Errorf("attaching %s: no network namespace %s", link.Container, link.Netns)
	}
	return nil
}

func (k *fakeKernel) DetachContainer(container, netns string) error {
	k.log.add("detach %s", container)
	delete(k.netns, netns)
	return nil
}

// fakeNFT is the nftables of a host's namespace as firewall.Kernel: the
// tables' shapes. It logs each transaction it applies.
type fakeNFT struct {
	log    *opLog
	tables map[firewall.Family]firewall.State
}

func (n *fakeNFT) Read(context.Context) ([]firewall.State, error) {
	return slices.Collect(maps.Values(n.tables)), nil
}

func (n *fakeNFT) Apply(_ context.Context, ops []firewall.Op) error {
	var names []string
	for _, op := range ops {
		names = append(names, op.String())
		if op.Delete {
			delete(n.tables, op.Family)
			continue
		}
		n.tables[op.Family] = firewall.State{Shape: op.Table.Shape()}
	}
	n.log.add("firewall %s", strings.Join(names, ", "))
	return nil
}

// fakeSupervisor is a host's processes as supervisor: the records on disk
// and the containers being supervised. Supervise starts nothing: it
// records the container and waits for its end. Only what the agent does
// synchronously is logged (stopping; a start shows as the status the agent
// reports), so the log's order does not depend on goroutines.
type fakeSupervisor struct {
	log         *opLog
	mu          sync.Mutex
	records     map[string]bool // on disk, outliving the agent
	supervising map[string]runtime.Config
}

func newFakeSupervisor(log *opLog) *fakeSupervisor {
	return &fakeSupervisor{log: log, records: map[string]bool{}, supervising: map[string]runtime.Config{}}
}

func (s *fakeSupervisor) Records(string, string) ([]runtime.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []runtime.Record
	for _, name := range slices.Sorted(maps.Keys(s.records)) {
		recs = append(recs, runtime.Record{Container: name, Pid: 100})
	}
	return recs, nil
}

func (s *fakeSupervisor) Supervise(ctx context.Context, cfg runtime.Config, _ func(runtime.Event)) error {
	s.mu.Lock()
	s.records[cfg.Container] = true
	s.supervising[cfg.Container] = cfg
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	delete(s.supervising, cfg.Container)
	s.mu.Unlock()
	return nil
}

func (s *fakeSupervisor) Stop(_ context.Context, _, _, container string, grace time.Duration) error {
	s.log.add("stop %s grace=%s", container, grace)
	s.mu.Lock()
	delete(s.records, container)
	s.mu.Unlock()
	return nil
}

func (s *fakeSupervisor) EnsureDaemon(_, _, name string, _ []string) (int, bool, error) {
	s.log.add("daemon %s", name)
	return 200, false, nil
}

func (s *fakeSupervisor) LogPath(string, string, string) string { return "" }

func (s *fakeSupervisor) UserNSFor(runtime.IDMap, bool) error { return nil }

// supervised is the containers being supervised now.
func (s *fakeSupervisor) supervised() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.supervising))
}

// fakeStore is the store as statusStore, with its guards: a status is
// written only from the host its container is assigned to, and withdrawn
// only when its container is assigned nowhere. It logs each call and, for
// a guarded one, what the guard did.
type fakeStore struct {
	log    *opLog
	mu     sync.Mutex
	assign map[string]model.Assignment
	status map[string]model.ContainerStatus
}

func (s *fakeStore) PutStatusAssigned(_ context.Context, st model.ContainerStatus) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if as, ok := s.assign[st.Container]; !ok || as.Host != st.Host {
		s.log.add("status %s %s: refused, not assigned to %s", st.Container, st.State, st.Host)
		return fmt.Errorf("reporting %s: %w", st.Container, store.ErrNotAssignedHere)
	}
	s.log.add("status %s %s", st.Container, st.State)
	s.status[st.Container] = st
	return nil
}

func (s *fakeStore) DeleteStatusUnassigned(_ context.Context, container string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if as, ok := s.assign[container]; ok {
		s.log.add("withdraw %s: kept, assigned to %s", container, as.Host)
		return nil
	}
	s.log.add("withdraw %s", container)
	delete(s.status, container)
	return nil
}
