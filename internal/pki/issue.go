package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/spec"
)

// Lifetimes. A certificate is issued again by `weft up` once less than
// renewBefore of it is left; the CA is never replaced while the cluster
// exists (`weft down` removes it with the cluster's state).
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 365 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
	// Clocks of hosts differ a little; a certificate is valid from a bit
	// before it was made.
	backdate = 5 * time.Minute
)

// leaf is one certificate to hold.
type leaf struct {
	files Files
	cn    string
	usage []x509.ExtKeyUsage
	ips   []netip.Addr
}

// Ensure makes the cluster's CA unless it exists, and every certificate the
// cluster's hosts and the CLI need unless a current one exists: signed by
// the CA, with the right name and addresses, valid for more than
// renewBefore. Run again with the same file it changes nothing. It reports
// whether it wrote anything.
func Ensure(root string, c *spec.Cluster, now time.Time) (changed bool, err error) {
	ca, made, err := ensureCA(root, c.Name, now)
	if err != nil {
		return false, err
	}
	changed = made
	for _, l := range leaves(root, c) {
		wrote, err := ca.ensure(l, now)
		if err != nil {
			return changed, err
		}
		changed = changed || wrote
	}
	return changed, nil
}

// leaves lists the certificates of the cluster: a client certificate per
// host, server and peer certificates per manager with the host's underlay
// address, and the CLI's.
func leaves(root string, c *spec.Cluster) []leaf {
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	out := []leaf{{files: CLIFiles(root, c.Name), cn: cliCommonName, usage: client}}
	for _, h := range c.Hosts {
		out = append(out, leaf{files: ClientFiles(root, c.Name, h.Name), cn: clientCommonName(h.Name), usage: client})
		if !h.IsManager() {
			continue
		}
		ips := []netip.Addr{h.Address}
		out = append(out,
			leaf{files: ServerFiles(root, c.Name, h.Name), cn: serverCommonName(h.Name), usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, ips: ips},
			leaf{files: PeerFiles(root, c.Name, h.Name), cn: PeerCommonName(h.Name), usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, ips: ips})
	}
	return out
}

// authority is the loaded cluster CA.
type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
	key     *ecdsa.PrivateKey
	pool    *x509.CertPool
}

// ensureCA loads the cluster's CA, or makes one when there is none. A CA
// that exists but cannot be used is an error, never silently replaced: the
// running members trust it.
func ensureCA(root, cluster string, now time.Time) (*authority, bool, error) {
	certPath, keyPath := caCert(root, cluster), caKey(root, cluster)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	if errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist) {
		ca, err := newCA(cluster, now)
		if err != nil {
			return nil, false, err
		}
		// The key first: a certificate without its key would be unusable.
		if err := writeFile(keyPath, ca.keyPEM); err != nil {
			return nil, false, err
		}
		if err := writeFile(certPath, ca.certPEM); err != nil {
			return nil, false, err
		}
		return ca, true, nil
	}
	if cerr != nil || kerr != nil {
		return nil, false, fmt.Errorf("reading the cluster CA (%s, %s): %w; run `weft down` to start the cluster afresh",
			certPath, keyPath, errors.Join(cerr, kerr))
	}
	ca, err := parseCA(certPEM, keyPEM, now)
	if err != nil {
		return nil, false, fmt.Errorf("the cluster CA %s cannot be used: %w; run `weft down` to start the cluster afresh", certPath, err)
	}
	// Tighten what an older weft or a hand left too open.
	if err := secure(filepath.Dir(keyPath), keyPath, certPath); err != nil {
		return nil, false, err
	}
	return ca, false, nil
}

func newCA(cluster string, now time.Time) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("making the cluster CA's key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "weft CA " + cluster, Organization: []string{"weft " + cluster}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("making the cluster CA: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return parseCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, now)
}

func parseCA(certPEM, keyPEM []byte, now time.Time) (*authority, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate and key do not load as a pair: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parsing the certificate: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !cert.IsCA {
		return nil, errors.New("it is not an ECDSA certificate authority")
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("it expired on %s", cert.NotAfter.Format(time.DateOnly))
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &authority{cert: cert, certPEM: certPEM, keyPEM: keyPEM, key: key, pool: pool}, nil
}

// ensure writes l's CA copy, and issues l again unless its files hold a
// current certificate.
func (ca *authority) ensure(l leaf, now time.Time) (bool, error) {
	wrote := false
	if old, err := os.ReadFile(l.files.CA); err != nil || !bytes.Equal(old, ca.certPEM) {
		if err := writeFile(l.files.CA, ca.certPEM); err != nil {
			return false, err
		}
		wrote = true
	}
	if ca.current(l, now) {
		return wrote, secure(filepath.Dir(l.files.Key), l.files.Key, l.files.Cert, l.files.CA)
	}
	certPEM, keyPEM, err := ca.issue(l, now)
	if err != nil {
		return wrote, err
	}
	if err := writeFile(l.files.Key, keyPEM); err != nil {
		return wrote, err
	}
	if err := writeFile(l.files.Cert, certPEM); err != nil {
		return wrote, err
	}
	return true, nil
}

// current reports whether l's files hold a certificate this CA signed, for
// l's name, usages and addresses, with its key, valid beyond renewBefore.
func (ca *authority) current(l leaf, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(l.files.Cert, l.files.Key)
	if err != nil {
		return false
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return false
	}
	if cert.Subject.CommonName != l.cn || now.Add(renewBefore).After(cert.NotAfter) ||
		!slices.Equal(cert.ExtKeyUsage, l.usage) || !sameIPs(cert.IPAddresses, l.ips) {
		return false
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: ca.pool, CurrentTime: now, KeyUsages: l.usage})
	return err == nil
}

func sameIPs(have []net.IP, want []netip.Addr) bool {
	if len(have) != len(want) {
		return false
	}
	for i, ip := range have {
		a, ok := netip.AddrFromSlice(ip)
		if !ok || a.Unmap() != want[i] {
			return false
		}
	}
	return true
}

func (ca *authority) issue(l leaf, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("making the key of %s: %w", l.files.Cert, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: l.cn, Organization: ca.cert.Subject.Organization},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  l.usage,
	}
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	for _, ip := range l.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing %s: %w", l.files.Cert, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("drawing a certificate serial number: %w", err)
	}
	return n, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding a private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeFile replaces path atomically with a file of mode 0600, in a
// directory of mode 0700.
func writeFile(path string, body []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("restricting %s to root: %w", dir, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, body, fileMode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// WriteFile keeps the mode of a file left over from a crash.
	if err := os.Chmod(tmp, fileMode); err != nil {
		return fmt.Errorf("restricting %s to root: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// secure sets dir to 0700 and files to 0600.
func secure(dir string, files ...string) error {
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("restricting %s to root: %w", dir, err)
	}
	for _, f := range files {
		if err := os.Chmod(f, fileMode); err != nil {
			return fmt.Errorf("restricting %s to root: %w", f, err)
		}
	}
	return nil
}
