package integration

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/spec"
)

const sshdPath = "/usr/sbin/sshd"

// sshRig stands in for servers: a lab of its own (router and host
// namespaces, no agent) with a real OpenSSH server in each host namespace,
// listening only on the host's underlay address, with a host key and an
// authorized key made for the test. Nothing in the root namespace routes to
// it: clients dial from its router namespace.
type sshRig struct {
	cluster string // the lab's own cluster name
	router  string // its router namespace, where ssh clients dial from
	key     string // the client's private key (authorized on every host)
	hosts   []rigHost
}

type rigHost struct {
	name, subnet, netns string
	addr                netip.Addr
}

// startSSHRig builds the rig of hosts in subnets (name -> cidr) and removes
// all of it (sshd processes, namespaces, files) when the test ends.
func startSSHRig(t *testing.T, hosts ...rigHost) sshRig {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		t.Skipf("provider ssh's test needs OpenSSH's sshd (scripts/install-deps.sh installs openssh-server): %v", err)
	}
	rig := sshRig{cluster: uniqueName("sr")}
	rig.router = naming.RouterNetns(rig.cluster)
	dir := t.TempDir()
	c := &spec.Cluster{Name: rig.cluster, Network: spec.Network{CIDR: netip.MustParsePrefix("192.168.0.0/16"), MTU: spec.DefaultMTU}}
	for _, h := range hosts {
		p := netip.PrefixFrom(h.addr, 24).Masked()
		c.Network.Subnets = append(c.Network.Subnets, spec.Subnet{Name: h.subnet, CIDR: p})
		c.Hosts = append(c.Hosts, spec.Host{Name: h.name, Subnet: h.subnet, Address: h.addr})
	}
	l := &lab.Lab{StateRoot: filepath.Join(dir, "lab")}
	t.Cleanup(func() {
		// sshd's connection children (own sessions) and anything they left.
		for _, h := range hosts {
			killInNetns(t, naming.HostNetns(rig.cluster, h.name))
		}
		if _, err := l.Destroy(context.Background(), rig.cluster, false); err != nil {
			t.Errorf("removing the ssh rig: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := l.Ensure(ctx, c); err != nil {
		t.Fatalf("building the ssh rig: %v", err)
	}
	// sshd's privilege separation directory.
	if _, err := os.Stat("/run/sshd"); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove("/run/sshd") })
	}
	rig.key = filepath.Join(dir, "id_ed25519")
	clientPub := writeKey(t, rig.key)
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, xssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		h.netns = naming.HostNetns(rig.cluster, h.name)
		startSSHD(t, dir, h, authorized)
		rig.hosts = append(rig.hosts, h)
	}
	for _, h := range rig.hosts {
		eventually(t, 10*time.Second, "sshd of "+h.name+" accepting", func() error {
			conn, err := nsthread.DialNamed(context.Background(), rig.router, &net.Dialer{Timeout: time.Second}, "tcp", net.JoinHostPort(h.addr.String(), "22"))
			if err == nil {
				conn.Close()
			}
			return err
		})
	}
	return rig
}

// writeKey writes a new ed25519 private key in OpenSSH's format and
// returns its public half.
func writeKey(t *testing.T, path string) xssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := xssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub
}

// startSSHD runs sshd in the host's namespace (forked from a thread inside
// it, so it keeps this machine's mounts), on the host's address only, in a
// process group of its own that the cleanup kills whole.
func startSSHD(t *testing.T, dir string, h rigHost, authorized string) {
	t.Helper()
	hostKey := filepath.Join(dir, h.name+"_host_ed25519")
	writeKey(t, hostKey)
	cfg := filepath.Join(dir, h.name+"_sshd_config")
	body := fmt.Sprintf(`ListenAddress %s:22
HostKey %s
AuthorizedKeysFile %s
PidFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowStreamLocalForwarding yes
AllowTcpForwarding local
X11Forwarding no
`, h.addr, hostKey, authorized, filepath.Join(dir, h.name+"_sshd.pid"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, h.name+"_sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := nsthread.DoNamed(h.netns, cmd.Start); err != nil {
		t.Fatalf("starting sshd in %s: %v", h.netns, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("sshd of %s:\n%s", h.name, tail(string(b), 3000))
			}
		}
	})
}

// procsInNetns lists the processes whose network namespace is the named
// one, as "pid comm".
func procsInNetns(name string) map[int]string {
	want, err := netnsInode("/run/netns/" + name)
	if err != nil {
		return nil
	}
	found := map[int]string{}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		ino, err := netnsInode(p + "/ns/net")
		if err != nil || ino != want {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(p), "%d", &pid); err != nil {
			continue
		}
		comm, _ := os.ReadFile(p + "/comm")
		found[pid] = strings.TrimSpace(string(comm))
	}
	return found
}

// killInNetns kills every process of the named network namespace.
func killInNetns(t *testing.T, name string) {
	t.Helper()
	for pid := range procsInNetns(name) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func netnsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}
