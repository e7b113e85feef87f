// Package agent is the per-host reconciler: it reads the store and the kernel
// and fixes the difference. It owns no outside resource of its own; it drives
// store, overlay, runtime, health and dns.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sync/errgroup"

	"github.com/weft-dev/weft/internal/firewall"
	"github.com/weft-dev/weft/internal/image"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/pki"
	"github.com/weft-dev/weft/internal/prio"
	"github.com/weft-dev/weft/internal/reach"
	"github.com/weft-dev/weft/internal/runtime"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// Config is what `weft agent` is started with.
type Config struct {
	Cluster   string
	Host      string
	StateRoot string
	Exe       string // the weft binary, for container-init and `command: [weft, ...]`
	Log       *slog.Logger
}

// Phases an agent goes through; the CLI shows them while waiting.
const (
	PhaseStartingEtcd = "starting-etcd"
	PhaseConnecting   = "connecting"
	PhaseReady        = "ready"
)

// hostLeaseTTL is how long a host stays "up" after its agent stops renewing:
// its instances leave DNS when it ends. 2s is etcd's minimum with the
// members' timing (1.5s, rounded up); the agent renews every 500ms (see
// store.RegisterHost), so a host is down within about 2.5s of dying.
const hostLeaseTTL = 2 * time.Second

// resyncInterval is how often an agent checks the kernel against the store
// even when nothing changed, repairing drift (a link deleted by hand). Store
// changes are acted on at once; this pass costs netlink dumps on every host,
// so it stays rare.
const resyncInterval = 10 * time.Second

// Agent is one host's agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	boot   *spec.Cluster
	self   spec.Host
	kernel kernel     // the host's network namespace
	rt     supervisor // the host's processes
	fw     firewall.Firewall
	images *image.Store   // this host's unpacked images
	peers  *reach.Monitor // the other hosts' reachability, from here

	creds *tls.Config // the host's etcd client certificate

	phase atomic.Value // string
	st    atomic.Pointer[store.Store]

	mu         sync.Mutex
	containers map[string]*containerRun
	// pulled is the unpacked image of each local container of an image
	// service, also one not started yet (waiting for its dependencies):
	// GC keeps them.
	pulled map[string]string
	// kick asks the reconcile loop for a pass now (askReconcile).
	kick chan struct{}

	underlayOnce sync.Once     // underlay.go
	underlayLink *underlayLink // nil until found
}

// Run runs the agent until ctx is cancelled. Containers keep running after
// it returns: a restarted agent adopts them.
func Run(ctx context.Context, cfg Config) error {
	trimMemory()
	if err := prio.Set(prio.ControlPlane); err != nil {
		cfg.Log.Warn("the agent keeps the workloads' CPU priority", "err", err)
	}
	boot, err := readBootstrap(cfg.StateRoot, cfg.Cluster, cfg.Host)
	if err != nil {
		return err
	}
	self, ok := boot.HostByName(cfg.Host)
	if !ok {
		return fmt.Errorf("host %s is not in cluster %s", cfg.Host, cfg.Cluster)
	}
	creds, err := storeCreds(cfg)
	if err != nil {
		return err
	}
	hostNS, err := netns.Get()
	if err != nil {
		return fmt.Errorf("opening the host network namespace: %w", err)
	}
	defer hostNS.Close()
	a := &Agent{
		cfg:        cfg,
		log:        cfg.Log,
		boot:       boot,
		self:       self,
		creds:      creds,
		kernel:     overlayKernel{host: hostNS},
		rt:         runtimeSupervisor{&runtime.Runtime{StateRoot: cfg.StateRoot, Exe: cfg.Exe, Log: cfg.Log}},
		fw:         firewall.Firewall{Kernel: firewall.NFT{}},
		images:     &image.Store{Root: naming.ImageDir(cfg.StateRoot, cfg.Cluster, cfg.Host), Log: cfg.Log},
		containers: map[string]*containerRun{},
		pulled:     map[string]string{},
		peers:      reach.NewMonitor(self.Name, reach.Query, reach.Interval, reach.MissLimit),
		kick:       make(chan struct{}, 1),
	}
	a.phase.Store(PhaseConnecting)

	sock := naming.AgentSocket(cfg.StateRoot, cfg.Cluster, cfg.Host)
	_ = os.Remove(sock)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		return fmt.Errorf("creating socket dir: %w", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sock, err)
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving agent API: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
		return nil
	})
	g.Go(func() error { a.probePeers(ctx); return nil })
	g.Go(func() error { return a.runControlPlane(ctx) })
	err = g.Wait()
	a.stopSupervisors()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (a *Agent) isManager() bool {
	for _, r := range a.self.Roles {
		if r == spec.RoleManager {
			return true
		}
	}
	return false
}

// runControlPlane starts the etcd member (managers), connects, registers the
// host, and runs the leader and reconcile loops.
func (a *Agent) runControlPlane(ctx context.Context) error {
	a.initFirewall(ctx)
	if a.isManager() {
		a.phase.Store(PhaseStartingEtcd)
		member, err := store.StartMember(ctx, store.MemberConfig{
			Name:           a.self.Name,
			DataDir:        filepath.Join(naming.HostStateDir(a.cfg.StateRoot, a.cfg.Cluster, a.cfg.Host), "etcd"),
			PeerURL:        store.PeerURL(a.self),
			ClientURL:      store.ClientURL(a.self),
			InitialCluster: store.InitialCluster(a.boot),
			ClusterToken:   "weft-" + a.cfg.Cluster,
			Log:            a.log,
			Server:         pki.ServerFiles(a.cfg.StateRoot, a.cfg.Cluster, a.self.Name),
			Peer:           pki.PeerFiles(a.cfg.StateRoot, a.cfg.Cluster, a.self.Name),
		})
		if err != nil {
			return fmt.Errorf("starting etcd member %s: %w", a.self.Name, err)
		}
		defer member.Close()
	}
	a.phase.Store(PhaseConnecting)
	var st *store.Store
	for {
		var err error
		st, err = store.Connect(ctx, store.ClientURLs(a.boot), a.creds, a.cfg.Cluster)
		if err == nil {
			break
		}
		a.log.Warn("connecting to the store", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	defer st.Close()
	a.st.Store(st)

	rec := model.HostRecord{
		Name:        a.self.Name,
		Subnet:      a.self.Subnet,
		Address:     a.self.Address,
		OverlayAddr: a.boot.HostOverlayAddr(a.self.Name),
		Netns:       naming.HostNetns(a.cfg.Cluster, a.self.Name),
		AgentPid:    os.Getpid(),
		Manager:     a.isManager(),
		Started:     time.Now().UTC(),
	}
	for {
		err := st.RegisterHost(ctx, rec, hostLeaseTTL)
		if err == nil {
			break
		}
		a.log.Warn("registering host", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	a.phase.Store(PhaseReady)
	a.log.Info("agent ready", "host", a.self.Name, "manager", a.isManager())

	g, ctx := errgroup.WithContext(ctx)
	if a.isManager() {
		// Only managers campaign: whenever the store has quorum a majority
		// of the managers' agents run (each carries its etcd member), so a
		// leader can always be elected among them, and workers keep no
		// election session of their own.
		g.Go(func() error { return a.leaderLoop(ctx, st) })
	}
	g.Go(func() error { return a.reconcileLoop(ctx, st) })
	g.Go(func() error { return a.vipLoop(ctx, st) })
	g.Go(func() error { return a.faultLoop(ctx, st) })
	g.Go(func() error { return a.gatewayLoop(ctx, st) })
	return g.Wait()
}

// storeCreds loads the host's etcd client certificate, which `weft up`
// made; the agent and the resolver present it to every member.
func storeCreds(cfg Config) (*tls.Config, error) {
	creds, err := pki.ClientFiles(cfg.StateRoot, cfg.Cluster, cfg.Host).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("host %s cannot reach the store: %w", cfg.Host, err)
	}
	return creds, nil
}

// trimMemory makes a long-lived per-host process collect garbage sooner:
// one agent and one resolver run on every host, so their resident size is
// paid once per host. The heap of an idle agent is small; the default GOGC
// lets it double before collecting.
func trimMemory() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}

// store returns the connected store, or nil before the agent is ready.
func (a *Agent) store() *store.Store { return a.st.Load() }
