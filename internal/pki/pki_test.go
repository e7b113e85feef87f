package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/spec"
)

func testCluster(managerAddr string) *spec.Cluster {
	return &spec.Cluster{Name: "tls-unit", Hosts: []spec.Host{
		{Name: "host1", Address: netip.MustParseAddr(managerAddr), Roles: []string{spec.RoleManager}},
		{Name: "host2", Address: netip.MustParseAddr("192.168.2.10")},
	}}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ips(c *x509.Certificate) []string {
	var out []string
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

func TestEnsureIssuesTheCluster(t *testing.T) {
	root := t.TempDir()
	c := testCluster("192.168.1.10")
	now := time.Now()
	changed, err := Ensure(root, c, now)
	if err != nil || !changed {
		t.Fatalf("first Ensure: changed %v, err %v", changed, err)
	}
	ca := readCert(t, caCert(root, c.Name))
	if !ca.IsCA || ca.NotAfter.Before(now.Add(9*365*24*time.Hour)) {
		t.Errorf("CA: IsCA %v, NotAfter %s", ca.IsCA, ca.NotAfter)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cases := []struct {
		name  string
		files Files
		cn    string
		usage x509.ExtKeyUsage
		ips   []string
	}{
		{"manager server", ServerFiles(root, c.Name, "host1"), "server:host1", x509.ExtKeyUsageServerAuth, []string{"192.168.1.10"}},
		{"manager peer as server", PeerFiles(root, c.Name, "host1"), "peer:host1", x509.ExtKeyUsageServerAuth, []string{"192.168.1.10"}},
		{"manager peer as client", PeerFiles(root, c.Name, "host1"), "peer:host1", x509.ExtKeyUsageClientAuth, []string{"192.168.1.10"}},
		{"manager agent", ClientFiles(root, c.Name, "host1"), "agent:host1", x509.ExtKeyUsageClientAuth, nil},
		{"worker agent", ClientFiles(root, c.Name, "host2"), "agent:host2", x509.ExtKeyUsageClientAuth, nil},
		{"cli", CLIFiles(root, c.Name), "cli", x509.ExtKeyUsageClientAuth, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert := readCert(t, tc.files.Cert)
			if cert.Subject.CommonName != tc.cn {
				t.Errorf("CN %q, want %q", cert.Subject.CommonName, tc.cn)
			}
			if got := ips(cert); !slices.Equal(got, tc.ips) {
				t.Errorf("IP SANs %v, want %v", got, tc.ips)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err != nil {
				t.Errorf("not valid for %v under the cluster CA: %v", tc.usage, err)
			}
			if _, err := tls.LoadX509KeyPair(tc.files.Cert, tc.files.Key); err != nil {
				t.Errorf("certificate and key are no pair: %v", err)
			}
			if !readCert(t, tc.files.CA).Equal(ca) {
				t.Errorf("%s is not the cluster CA", tc.files.CA)
			}
		})
	}
	t.Run("a worker has no server or peer certificate", func(t *testing.T) {
		for _, f := range []Files{ServerFiles(root, c.Name, "host2"), PeerFiles(root, c.Name, "host2")} {
			if _, err := os.Stat(f.Cert); !os.IsNotExist(err) {
				t.Errorf("%s: %v, want not there", f.Cert, err)
			}
		}
	})
	t.Run("a client certificate cannot serve", func(t *testing.T) {
		cert := readCert(t, ClientFiles(root, c.Name, "host1").Cert)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
			t.Error("an agent's certificate verifies as a server certificate")
		}
	})
}

func TestEnsureModes(t *testing.T) {
	root := t.TempDir()
	c := testCluster("192.168.1.10")
	// An older tree left open: Ensure tightens it.
	if err := os.MkdirAll(HostDir(root, c.Name, "host1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(root, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		for _, dir := range []string{ClusterDir(root, c.Name), HostDir(root, c.Name, "host1"), HostDir(root, c.Name, "host2")} {
			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %v, err %v; want 0700", dir, fi.Mode().Perm(), err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				fi, err := e.Info()
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, err %v; want 0600", filepath.Join(dir, e.Name()), fi.Mode().Perm(), err)
				}
				if filepath.Ext(e.Name()) == ".tmp" {
					t.Errorf("%s left behind", e.Name())
				}
			}
		}
	}
	check()
	// A key opened by hand is closed again by the next up.
	key := PeerFiles(root, c.Name, "host1").Key
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ClusterDir(root, c.Name), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(root, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	check()
}

func TestEnsureReuses(t *testing.T) {
	root := t.TempDir()
	c := testCluster("192.168.1.10")
	now := time.Now()
	if _, err := Ensure(root, c, now); err != nil {
		t.Fatal(err)
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(p)
				out[p] = string(b)
			}
			return nil
		})
		return out
	}
	before := snapshot()

	t.Run("a second up changes nothing", func(t *testing.T) {
		changed, err := Ensure(root, c, now.Add(time.Hour))
		if err != nil || changed {
			t.Fatalf("changed %v, err %v", changed, err)
		}
		after := snapshot()
		for p, body := range before {
			if after[p] != body {
				t.Errorf("%s was rewritten", p)
			}
		}
	})
	t.Run("a moved manager gets new certificates under the same CA", func(t *testing.T) {
		moved := testCluster("192.168.1.20")
		changed, err := Ensure(root, moved, now)
		if err != nil || !changed {
			t.Fatalf("changed %v, err %v", changed, err)
		}
		after := snapshot()
		if after[caCert(root, c.Name)] != before[caCert(root, c.Name)] || after[caKey(root, c.Name)] != before[caKey(root, c.Name)] {
			t.Error("the CA was replaced")
		}
		if got := ips(readCert(t, ServerFiles(root, c.Name, "host1").Cert)); !slices.Equal(got, []string{"192.168.1.20"}) {
			t.Errorf("server SANs %v after the move", got)
		}
		if after[ClientFiles(root, c.Name, "host2").Cert] != before[ClientFiles(root, c.Name, "host2").Cert] {
			t.Error("an unaffected client certificate was reissued")
		}
	})
	t.Run("a certificate near its end is renewed", func(t *testing.T) {
		cli := CLIFiles(root, c.Name).Cert
		old := readCert(t, cli)
		if _, err := Ensure(root, c, old.NotAfter.Add(-renewBefore/2)); err != nil {
			t.Fatal(err)
		}
		if renewed := readCert(t, cli); renewed.SerialNumber.Cmp(old.SerialNumber) == 0 {
			t.Error("the CLI certificate was kept within renewBefore of its end")
		}
	})
	t.Run("a certificate of another CA is replaced", func(t *testing.T) {
		other := t.TempDir()
		if _, err := Ensure(other, c, now); err != nil {
			t.Fatal(err)
		}
		f := ClientFiles(root, c.Name, "host2")
		for _, p := range []string{f.Cert, f.Key} {
			b, _ := os.ReadFile(filepath.Join(other, c.Name, "hosts", "host2", "pki", filepath.Base(p)))
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if changed, err := Ensure(root, c, now); err != nil || !changed {
			t.Fatalf("changed %v, err %v", changed, err)
		}
		ca := readCert(t, caCert(root, c.Name))
		if err := readCert(t, f.Cert).CheckSignatureFrom(ca); err != nil {
			t.Errorf("the foreign certificate was kept: %v", err)
		}
	})
	t.Run("an unreadable CA is an error, never replaced", func(t *testing.T) {
		if err := os.WriteFile(caKey(root, c.Name), []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Ensure(root, c, now); err == nil {
			t.Fatal("Ensure accepted a broken CA key")
		}
	})
}

// TestClientConfigHandshake checks the files work as TLS: a server with the
// manager's certificate that requires client certificates accepts an agent
// and refuses a client without a certificate.
func TestClientConfigHandshake(t *testing.T) {
	root := t.TempDir()
	c := testCluster("127.0.0.1")
	if _, err := Ensure(root, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	ln := mutualServer(t, root, c)
	exchange := func(cfg *tls.Config) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1)
		_, err = conn.Read(buf) // TLS 1.3 reports a refused client certificate on the first read
		return err
	}
	agent, err := ClientFiles(root, c.Name, "host2").ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := exchange(agent); err != nil {
		t.Errorf("the agent's certificate was refused: %v", err)
	}
	if err := exchange(&tls.Config{RootCAs: agent.RootCAs, MinVersion: tls.VersionTLS13}); err == nil {
		t.Error("a client without a certificate was served")
	}
}

// BenchmarkMutualHandshake is the cost of one TLS 1.3 handshake with client
// certificates, both sides in this process, over loopback:
//
//	go test -run XXX -bench MutualHandshake ./internal/pki/
func BenchmarkMutualHandshake(b *testing.B) {
	root := b.TempDir()
	c := testCluster("127.0.0.1")
	if _, err := Ensure(root, c, time.Now()); err != nil {
		b.Fatal(err)
	}
	ln := mutualServer(b, root, c)
	agent, err := ClientFiles(root, c.Name, "host2").ClientConfig()
	if err != nil {
		b.Fatal(err)
	}
	agent.ClientSessionCache = nil // a full handshake every time
	b.ResetTimer()
	for b.Loop() {
		conn, err := tls.Dial("tcp", ln.Addr().String(), agent)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 1)
		if _, err := conn.Read(buf); err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}

// mutualServer serves TLS 1.3 with host1's server certificate, requiring a
// client certificate of the cluster CA; each connection gets one byte
// after its handshake.
func mutualServer(tb testing.TB, root string, c *spec.Cluster) net.Listener {
	tb.Helper()
	sf := ServerFiles(root, c.Name, "host1")
	pair, err := tls.LoadX509KeyPair(sf.Cert, sf.Key)
	if err != nil {
		tb.Fatal(err)
	}
	pool, err := loadPool(sf.CA)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.(*tls.Conn).Handshake()
				_, _ = conn.Write([]byte("k"))
			}()
		}
	}()
	return ln
}

func TestHostHandoverNeverTheCAKey(t *testing.T) {
	root := t.TempDir()
	c := testCluster("192.168.1.10")
	if _, err := Ensure(root, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, h := range c.Hosts {
		files := HostHandover(root, c.Name, h.Name)
		want := 3 // ca.crt, client.crt, client.key
		if h.IsManager() {
			want = 7
		}
		if len(files) != want {
			t.Errorf("%s: %d files, want %d: %v", h.Name, len(files), want, files)
		}
		for _, f := range files {
			if f == caKey(root, c.Name) || !strings.HasPrefix(f, HostDir(root, c.Name, h.Name)) {
				t.Errorf("%s: hands over %s, outside its own pki directory", h.Name, f)
			}
		}
	}
}
