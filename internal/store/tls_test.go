package store

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestMembersRequireClientCertificates checks both ports of a member: only
// clients with a certificate of the cluster CA are served, and the peer port
// takes only peer certificates.
func TestMembersRequireClientCertificates(t *testing.T) {
	tc := startCluster(t, 1)
	client, peer := tc.configs[0].ClientURL, tc.configs[0].PeerURL
	get := func(cfg *tls.Config, url string) (int, error) {
		hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	noCert := &tls.Config{RootCAs: tc.creds.RootCAs, MinVersion: tls.VersionTLS13}
	peerCreds := func(t *testing.T) *tls.Config {
		t.Helper()
		cfg, err := tc.configs[0].Peer.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	t.Run("plain HTTP is refused on both ports", func(t *testing.T) {
		for _, url := range []string{client, peer} {
			plain := "http://" + strings.TrimPrefix(url, "https://") + "/version"
			if code, err := get(nil, plain); err == nil && code == http.StatusOK {
				t.Errorf("GET %s answered 200 without TLS", plain)
			}
		}
	})
	t.Run("TLS without a client certificate is refused on both ports", func(t *testing.T) {
		for _, url := range []string{client, peer} {
			if code, err := get(noCert, url+"/version"); err == nil {
				t.Errorf("GET %s/version without a certificate: %d, want a refused handshake", url, code)
			}
		}
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, TLS: noCert, DialTimeout: time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := c.Put(ctx, "/weft/intruder", "x"); err == nil {
			t.Error("an etcd client without a certificate wrote a key")
		}
	})
	t.Run("an agent's certificate is served on the client port only", func(t *testing.T) {
		if code, err := get(tc.creds, client+"/version"); err != nil || code != http.StatusOK {
			t.Errorf("client port with the agent's certificate: %d, %v", code, err)
		}
		if code, err := get(tc.creds, peer+"/version"); err == nil {
			t.Errorf("peer port served the agent's certificate: %d", code)
		}
		if code, err := get(peerCreds(t), peer+"/version"); err != nil || code != http.StatusOK {
			t.Errorf("peer port with the peer certificate: %d, %v", code, err)
		}
	})
	t.Run("Connect refuses to dial without a certificate", func(t *testing.T) {
		if _, err := Connect(context.Background(), tc.endpoints(), noCert, "c"); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("Connect without a certificate: %v, want an error naming the certificate", err)
		}
	})
}
