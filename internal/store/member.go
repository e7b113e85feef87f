package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"

	"github.com/weft-dev/weft/internal/pki"
)

// MemberConfig describes one embedded etcd member, run by a manager agent.
type MemberConfig struct {
	Name           string            // host name
	DataDir        string            // e.g. <HostStateDir>/etcd
	PeerURL        string            // "https://192.168.1.10:2380"
	ClientURL      string            // "https://192.168.1.10:2379"
	InitialCluster map[string]string // name -> peer URL of every manager
	ClusterToken   string            // "weft-<cluster>"
	Log            *slog.Logger      // etcd's warnings and errors go here; nil discards them

	// Both ports speak TLS only and require a client certificate signed by
	// the cluster CA: Server is presented on the client port, Peer on the
	// peer port and when dialling other members.
	Server pki.Files
	Peer   pki.Files
}

// Member is a running embedded etcd member.
type Member struct {
	etcd *embed.Etcd
}

// Sizes chosen for small lab machines where three members share one box:
// etcd's defaults (100k-entry snapshots in memory, 8 GiB quota) are made for
// dedicated servers.
const (
	memberSnapshotCount = 5000
	memberQuotaBytes    = 256 << 20
	// A transaction of ReplaceAssignments holds one operation per changed
	// container; etcd's default of 128 is too few for a re-plan of a large file.
	memberMaxTxnOps = 2048
	// History older than this is compacted; Changes re-lists after compaction.
	memberCompactionRetention = "10m"
)

// StartMember starts an embedded etcd member and returns once it has joined
// a cluster that has a leader, which needs a quorum of the members in
// InitialCluster to be started too: start them concurrently. If DataDir
// already holds a member, the member restarts from it and rejoins its
// cluster (InitialCluster is then ignored by etcd).
//
// etcd registers its server metrics (etcd_server_*, etcd_mvcc_*, grpc_server_*
// ...) into the default Prometheus registry in package init functions, once
// per process, so several members in one process never panic on double
// registration; weft adds nothing to that registry. The member serves
// /metrics and /health on its client URL.
func StartMember(ctx context.Context, cfg MemberConfig) (*Member, error) {
	ecfg, err := embedConfig(cfg)
	if err != nil {
		return nil, err
	}
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd member %s (peer %s, client %s, data %s): %w",
			cfg.Name, cfg.PeerURL, cfg.ClientURL, cfg.DataDir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return &Member{etcd: e}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd member %s failed while joining its cluster: %w", cfg.Name, err)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("etcd member %s did not join a cluster with a leader (are a quorum of the managers %s up?): %w",
			cfg.Name, strings.Join(slices.Sorted(maps.Keys(cfg.InitialCluster)), ", "), ctx.Err())
	}
}

// Close stops the member and waits until it has stopped. Its data stays in
// DataDir so a later StartMember rejoins.
func (m *Member) Close() { m.etcd.Close() }

// Err reports errors that stop the member while it runs (e.g. it was removed
// from the cluster or its disk failed).
func (m *Member) Err() <-chan error { return m.etcd.Err() }

func embedConfig(cfg MemberConfig) (*embed.Config, error) {
	var problems []error
	if cfg.Name == "" {
		problems = append(problems, errors.New("MemberConfig.Name is empty: set it to the host's name"))
	}
	if cfg.DataDir == "" {
		problems = append(problems, errors.New("MemberConfig.DataDir is empty: set it to a directory under the host's state dir"))
	}
	peerURL, err := parseMemberURL("PeerURL", cfg.PeerURL)
	if err != nil {
		problems = append(problems, err)
	}
	clientURL, err := parseMemberURL("ClientURL", cfg.ClientURL)
	if err != nil {
		problems = append(problems, err)
	}
	if _, ok := cfg.InitialCluster[cfg.Name]; !ok {
		problems = append(problems, fmt.Errorf("MemberConfig.InitialCluster has no entry for this member %q: list every manager including this one", cfg.Name))
	}
	initial := make([]string, 0, len(cfg.InitialCluster))
	for _, name := range slices.Sorted(maps.Keys(cfg.InitialCluster)) {
		if _, err := parseMemberURL("InitialCluster["+name+"]", cfg.InitialCluster[name]); err != nil {
			problems = append(problems, err)
		}
		initial = append(initial, name+"="+cfg.InitialCluster[name])
	}
	for field, f := range map[string]pki.Files{"Server": cfg.Server, "Peer": cfg.Peer} {
		if f.CA == "" || f.Cert == "" || f.Key == "" {
			problems = append(problems, fmt.Errorf("MemberConfig.%s names no CA, certificate or key: set it from pki (run `weft up` to make them)", field))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid etcd member config: %w", errors.Join(problems...))
	}

	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "etcd", "member", cfg.Name)

	ecfg := embed.NewConfig()
	ecfg.Name = cfg.Name
	ecfg.Dir = cfg.DataDir
	ecfg.ListenPeerUrls = []url.URL{*peerURL}
	ecfg.AdvertisePeerUrls = []url.URL{*peerURL}
	ecfg.ListenClientUrls = []url.URL{*clientURL}
	ecfg.AdvertiseClientUrls = []url.URL{*clientURL}
	ecfg.ClientTLSInfo = transport.TLSInfo{
		CertFile: cfg.Server.Cert, KeyFile: cfg.Server.Key, TrustedCAFile: cfg.Server.CA,
		ClientCertAuth: true, MinVersion: tls.VersionTLS13,
	}
	// A member accepts as peers only the peer certificates of the members
	// it was told of: an agent's or the CLI's certificate is refused there.
	var peerNames []string
	for _, name := range slices.Sorted(maps.Keys(cfg.InitialCluster)) {
		peerNames = append(peerNames, pki.PeerCommonName(name))
	}
	ecfg.PeerTLSInfo = transport.TLSInfo{
		CertFile: cfg.Peer.Cert, KeyFile: cfg.Peer.Key, TrustedCAFile: cfg.Peer.CA,
		ClientCertAuth: true, MinVersion: tls.VersionTLS13, AllowedCNs: peerNames,
	}
	ecfg.InitialCluster = strings.Join(initial, ",")
	ecfg.InitialClusterToken = cfg.ClusterToken
	ecfg.ClusterState = embed.ClusterStateFlagNew
	ecfg.SnapshotCount = memberSnapshotCount
	ecfg.SnapshotCatchUpEntries = memberSnapshotCount
	ecfg.QuotaBackendBytes = memberQuotaBytes
	ecfg.MaxTxnOps = memberMaxTxnOps
	ecfg.TickMs = 100
	ecfg.ElectionMs = 1000
	ecfg.AutoCompactionMode = embed.CompactorModePeriodic
	ecfg.AutoCompactionRetention = memberCompactionRetention
	// The server pings its clients too, so a client that vanished without a
	// reset (its host cut off) stops holding watches and streams.
	ecfg.GRPCKeepAliveInterval = keepAliveTime
	ecfg.GRPCKeepAliveTimeout = keepAliveTimeout
	ecfg.Metrics = "basic"
	// weft speaks gRPC only; the JSON gateway costs memory and goroutines.
	ecfg.EnableGRPCGateway = false
	ecfg.LogLevel = "warn"
	ecfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLogger(log, zapcore.WarnLevel))
	return ecfg, nil
}

func parseMemberURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("MemberConfig.%s %q is not a URL like https://192.168.1.10:2380", field, raw)
	}
	return u, nil
}
