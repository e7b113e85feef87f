package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/weft-dev/weft/internal/chaos/native"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/pki"
	"github.com/weft-dev/weft/internal/store"
)

// One manager and one worker: the worker's namespace is another host on the
// underlay that carries no etcd member.
const tlsTmpl = `version: 1
name: NAME
provider: lab
network:
  cidr: 192.168.0.0/16
  subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}
overlay: {vni: 444, cidr: 10.10.0.0/16}
hosts:
  - {name: host1, subnet: a, roles: [manager]}
  - {name: host2, subnet: b, roles: [worker]}
services:
  web:
    command: [HELLO, -listen, ":8080", -name, web]
    replicas: 1
    port: 8080
    health: {http: /health, interval: 200ms}
`

// TestEtcdRefusesClientsWithoutCertificate: from the worker host's
// namespace, etcd's client and peer ports refuse a plain-HTTP client and a
// TLS client without a certificate; the worker's agent certificate is
// served on the client port (and refused on the peer port). The CA and the
// certificates are 0600 in 0700 directories and a second up keeps the CA.
func TestEtcdRefusesClientsWithoutCertificate(t *testing.T) {
	c := writeCluster(t, uniqueName("tls-e"), tlsTmpl)
	upCluster(t, c)
	worker := hostNetns(c, "host2")
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return native.DialIn(ctx, worker, addr) }
	clientAddr, peerAddr := etcdClientAddr("192.168.1.10"), etcdPeerAddr("192.168.1.10")
	agentCreds, err := pki.ClientFiles(naming.DefaultStateRoot, c.name, "host2").ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	noCert := &tls.Config{RootCAs: agentCreds.RootCAs, MinVersion: tls.VersionTLS13}

	// get is an HTTP GET of /version made from the worker's namespace.
	get := func(scheme, addr string, cfg *tls.Config) (int, string, error) {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext:     func(ctx context.Context, _, addr string) (net.Conn, error) { return dial(ctx, addr) },
			TLSClientConfig: cfg,
		}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(scheme + "://" + addr + "/version")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(body), nil
	}
	// put writes a key with an etcd client made from the worker's namespace.
	put := func(endpoint string, cfg *tls.Config) error {
		cli, err := rawEtcd(endpoint, cfg, dial)
		if err != nil {
			return err
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		_, err = cli.Put(ctx, naming.StoreRoot(c.name)+"intruder", "x")
		return err
	}

	t.Run("plain HTTP is refused on both ports", func(t *testing.T) {
		for _, addr := range []string{clientAddr, peerAddr} {
			if code, body, err := get("http", addr, nil); err == nil && code == http.StatusOK {
				t.Errorf("GET http://%s/version answered 200 without TLS: %s", addr, body)
			}
		}
		if err := put("http://"+clientAddr, nil); err == nil {
			t.Error("an etcd client over plain HTTP wrote a key")
		}
	})
	t.Run("TLS without a certificate is refused on both ports", func(t *testing.T) {
		for _, addr := range []string{clientAddr, peerAddr} {
			if code, body, err := get("https", addr, noCert); err == nil {
				t.Errorf("GET https://%s/version without a certificate answered %d: %s", addr, code, body)
			}
		}
		if err := put("https://"+clientAddr, noCert); err == nil {
			t.Error("an etcd client without a certificate wrote a key")
		}
	})
	t.Run("the agent's certificate is served on the client port, not the peer port", func(t *testing.T) {
		if code, body, err := get("https", clientAddr, agentCreds); err != nil || code != http.StatusOK {
			t.Errorf("client port with the agent's certificate: %d %s %v", code, body, err)
		}
		if code, _, err := get("https", peerAddr, agentCreds); err == nil {
			t.Errorf("peer port served the agent's certificate: %d", code)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := store.ConnectVia(ctx, dial, []string{"https://" + clientAddr}, agentCreds, c.name)
		if err != nil {
			t.Fatalf("connecting with the agent's certificate: %v", err)
		}
		defer st.Close()
		if spec, err := st.Spec(ctx); err != nil || spec == nil || spec.Name != c.name {
			t.Errorf("reading the spec with the agent's certificate: %v, %v", spec, err)
		}
	})
	t.Run("keys and certificates are root's only; a second up keeps the CA", func(t *testing.T) {
		state := naming.StateDir(naming.DefaultStateRoot, c.name)
		dirs := []string{pki.ClusterDir(naming.DefaultStateRoot, c.name), pki.HostDir(naming.DefaultStateRoot, c.name, "host1"), pki.HostDir(naming.DefaultStateRoot, c.name, "host2")}
		for _, dir := range dirs {
			fi, err := os.Stat(dir)
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("%s: %v %v, want mode 0700", dir, fi, err)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			if len(files) < 3 {
				t.Errorf("%s holds %v", dir, files)
			}
			for _, f := range files {
				if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
				}
			}
		}
		ca := filepath.Join(state, "pki", "ca.crt")
		before, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		mustWeft(t, "up", "-f", c.file)
		if after, err := os.ReadFile(ca); err != nil || !bytes.Equal(before, after) {
			t.Errorf("a second up replaced the CA (%v)", err)
		}
	})
}

// TestBadStoreValuesAreRefused: values written into the store behind weft's
// back (an IPv6 assignment, undecodable JSON) are refused and reported by
// the agents, never acted on and never a crash: the leader writes a valid
// assignment over the bad one, web-1 keeps running, status lists the
// garbage it cannot repair, and later changes still reach every agent.
func TestBadStoreValuesAreRefused(t *testing.T) {
	c := writeCluster(t, uniqueName("tls-v"), tlsTmpl)
	upCluster(t, c)
	pidsBefore := map[string]int{}
	for _, h := range c.status(t).Hosts {
		pidsBefore[h.Name] = h.AgentPid
	}
	creds, err := pki.CLIFiles(naming.DefaultStateRoot, c.name).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	router := naming.RouterNetns(c.name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return native.DialIn(ctx, router, addr) }
	endpoint := "https://" + etcdClientAddr("192.168.1.10")
	st, err := store.ConnectVia(ctx, dial, []string{endpoint}, creds, c.name)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The garbage goes in behind weft's back, with a client of etcd's own.
	raw, err := rawEtcd(endpoint, creds, dial)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	assign, _, err := st.Assignments(ctx)
	if err != nil || len(assign) != 1 {
		t.Fatalf("assignments %v, %v", assign, err)
	}
	web1 := assign["web-1"]
	root := naming.StoreRoot(c.name)
	for key, value := range map[string]string{
		"assign/web-1":  `{"container":"web-1","service":"web","index":1,"host":"` + web1.Host + `","ip":"fd00::1","mac":"02:42:00:00:00:01"}`,
		"assign/zzz-1":  `{not json`,
		"status/zzz-1":  `{"container": 5`,
		"hosts/ghost-1": `[]`,
	} {
		if _, err := raw.Put(ctx, root+key, value); err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, 20*time.Second, "the leader wrote a valid web-1 over the IPv6 one", func() error {
		a, _, err := st.Assignments(ctx)
		if err != nil {
			return err
		}
		if got := a["web-1"]; !got.IP.Is4() {
			return fmt.Errorf("web-1 is %+v", got)
		}
		return nil
	})
	eventually(t, 30*time.Second, "status lists what cannot be repaired, web-1 healthy", func() error {
		s := c.status(t)
		joined := strings.Join(s.Refused, "\n")
		for _, want := range []string{"assign/zzz-1: does not decode", "status/zzz-1: does not decode", "hosts/ghost-1: does not decode"} {
			if !strings.Contains(joined, want) {
				return fmt.Errorf("refused %q lacks %q", s.Refused, want)
			}
		}
		for _, ct := range s.Containers {
			if ct.Container == "web-1" && ct.Ready() {
				return nil
			}
		}
		return fmt.Errorf("web-1 not healthy: %+v", s.Containers)
	})
	out := mustWeft(t, "status", "-f", c.file)
	if !strings.Contains(out, "REFUSED") || !strings.Contains(out, "assign/zzz-1") {
		t.Errorf("weft status does not show the refused values:\n%s", out)
	}
	// The agents' mirrors are not stalled: a change after the garbage is
	// carried out.
	c.rewrite(t, strings.Replace(tlsTmpl, "replicas: 1", "replicas: 2", 1))
	mustWeft(t, "up", "-f", c.file)
	for _, h := range c.status(t).Hosts {
		if h.AgentPid != pidsBefore[h.Name] {
			t.Errorf("agent of %s restarted (pid %d, was %d)", h.Name, h.AgentPid, pidsBefore[h.Name])
		}
	}
	logs, _ := filepath.Glob(filepath.Join(naming.StateDir(naming.DefaultStateRoot, c.name), "hosts", "*", "agent.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if bytes.Contains(b, []byte("panic")) {
			t.Errorf("%s shows a panic", l)
		}
	}
}

// rawEtcd is a plain etcd client of endpoint that dials through dial (from
// inside a lab namespace), for what weft's store never does on its own.
func rawEtcd(endpoint string, cfg *tls.Config, dial func(context.Context, string) (net.Conn, error)) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint}, TLS: cfg, DialTimeout: 2 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(dial)},
	})
}

// etcdClientAddr and etcdPeerAddr are the etcd ports of a manager's
// underlay address, as the agents listen on them.
func etcdClientAddr(addr string) string {
	return net.JoinHostPort(addr, strconv.Itoa(store.ClientPort))
}

func etcdPeerAddr(addr string) string { return net.JoinHostPort(addr, strconv.Itoa(store.PeerPort)) }
