// Package pki owns a cluster's certificates: the cluster CA made at the
// first `weft up`, and the certificates etcd's members, the agents and the
// CLI present to each other (mutual TLS on etcd's client and peer ports).
// It is the one source of their paths; every file it writes is mode 0600 in
// a directory of mode 0700.
//
// Layout, below naming.StateDir(root, cluster):
//
//	pki/ca.crt ca.key               the cluster CA (its key never leaves this directory)
//	pki/cli.crt cli.key             the CLI's client certificate (chaos runner)
//	hosts/<host>/pki/ca.crt         the CA certificate: the trust anchor
//	hosts/<host>/pki/client.*       the host's agent and resolver, as etcd clients
//	hosts/<host>/pki/server.*       managers: etcd's client port :2379
//	hosts/<host>/pki/peer.*         managers: etcd's peer port :2380, both directions
package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/weft-dev/weft/internal/naming"
)

// Files is one party's TLS material: the CA it trusts, its certificate and
// its private key.
type Files struct {
	CA   string
	Cert string
	Key  string
}

const (
	dirName  = "pki"
	dirMode  = 0o700
	fileMode = 0o600
)

// ClusterDir holds the CA and the CLI's certificate.
func ClusterDir(root, cluster string) string {
	return filepath.Join(naming.StateDir(root, cluster), dirName)
}

// HostDir holds one host's certificates.
func HostDir(root, cluster, host string) string {
	return filepath.Join(naming.HostStateDir(root, cluster, host), dirName)
}

func caCert(root, cluster string) string { return filepath.Join(ClusterDir(root, cluster), "ca.crt") }
func caKey(root, cluster string) string  { return filepath.Join(ClusterDir(root, cluster), "ca.key") }

func hostFiles(root, cluster, host, kind string) Files {
	dir := HostDir(root, cluster, host)
	return Files{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, kind+".crt"), Key: filepath.Join(dir, kind+".key")}
}

// ServerFiles is a manager's certificate on etcd's client port.
func ServerFiles(root, cluster, host string) Files { return hostFiles(root, cluster, host, "server") }

// PeerFiles is a manager's certificate on etcd's peer port; a member
// presents it both when it accepts and when it dials a peer.
func PeerFiles(root, cluster, host string) Files { return hostFiles(root, cluster, host, "peer") }

// ClientFiles is the certificate a host's agent and resolver present to etcd.
func ClientFiles(root, cluster, host string) Files { return hostFiles(root, cluster, host, "client") }

// CLIFiles is the certificate the CLI presents to etcd (the chaos runner
// reads and writes fault records directly).
func CLIFiles(root, cluster string) Files {
	dir := ClusterDir(root, cluster)
	return Files{CA: caCert(root, cluster), Cert: filepath.Join(dir, "cli.crt"), Key: filepath.Join(dir, "cli.key")}
}

// PeerCommonName is the subject common name of a manager's peer
// certificate. etcd's peer port accepts only these names, so a client
// certificate (an agent's, the CLI's) cannot join the cluster as a member.
func PeerCommonName(host string) string { return "peer:" + host }

// Common names of the other certificates, for logs and audits.
func serverCommonName(host string) string { return "server:" + host }
func clientCommonName(host string) string { return "agent:" + host }

const cliCommonName = "cli"

// ClientConfig is the TLS configuration of an etcd client presenting these
// files: TLS 1.3, the cluster CA as the only root, this certificate.
func (f Files) ClientConfig() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("loading the client certificate %s (run `weft up` to make it): %w", f.Cert, err)
	}
	pool, err := loadPool(f.CA)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{pair}}, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster CA %s (run `weft up` to make it): %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the cluster CA %s holds no PEM certificate: run `weft down` and `weft up` to make a new one", path)
	}
	return pool, nil
}
