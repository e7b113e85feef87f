package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	xssh "golang.org/x/crypto/ssh"

	"github.com/weft-dev/weft/internal/provider"
	"github.com/weft-dev/weft/internal/spec"
)

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/opt/weft/bin/weft": "/opt/weft/bin/weft",
		"--state-root=/x":    "--state-root=/x",
		"":                   "''",
		"a b":                "'a b'",
		"it's":               `'it'\''s'`,
		"$(rm -rf /)":        "'$(rm -rf /)'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRemoteArgs(t *testing.T) {
	in := []string{"agent", "--cluster", "c", "--host", "h", "--state-root", "/var/lib/weft"}
	got := remoteArgs(in, "/opt/weft/state")
	want := []string{"agent", "--cluster", "c", "--host", "h", "--state-root", "/opt/weft/state"}
	if !reflect.DeepEqual(got, want) || in[6] != "/var/lib/weft" {
		t.Errorf("remoteArgs = %v (input now %v), want %v and the input untouched", got, in, want)
	}
}

func TestParsePreflight(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		mtu     int
		want    preflight
		missing []string // substrings, one per expected problem
	}{
		{name: "ready", out: "iface: ens5 9001\ninit: systemd\n", mtu: 1500,
			want: preflight{Init: initSystemd, Iface: "ens5", MTU: 9001}},
		{name: "everything missing", out: "missing: VXLAN support\nmissing: the cgroup v1 hierarchy pids\ninit: supervisor\n", mtu: 1500,
			missing: []string{"VXLAN", "cgroup"}},
		{name: "mtu too small", out: "iface: eth0 1450\ninit: supervisor\n", mtu: 1500,
			missing: []string{"`mtu: 1450` under network"}},
		{name: "no shell", out: "This account is currently not available.\n", mtu: 1500,
			missing: []string{"POSIX shell"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parsePreflight(tt.out, tt.mtu)
			if len(tt.missing) == 0 {
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			if len(got.Missing) != len(tt.missing) {
				t.Fatalf("missing %q, want %d problems like %q", got.Missing, len(tt.missing), tt.missing)
			}
			for i, m := range tt.missing {
				if !strings.Contains(got.Missing[i], m) {
					t.Errorf("problem %d = %q, want it to mention %q", i, got.Missing[i], m)
				}
			}
		})
	}
}

func TestPreflightScriptNamesTheHost(t *testing.T) {
	c := &spec.Cluster{Name: "prod", Overlay: spec.Overlay{VNI: 444, Port: 4789}, Network: spec.Network{MTU: 1500}}
	h := spec.Host{Name: "host1", Address: netip.MustParseAddr("10.0.1.10"), InstallRoot: "/opt/weft"}
	s := preflightScript(c, h)
	for _, want := range []string{"p=:12B5", "vxlan444", "a=10.0.1.10", "/opt/weft/.weft-cluster", "/sys/module/vxlan", "/sys/fs/cgroup/pids"} {
		if !strings.Contains(s, want) {
			t.Errorf("the check does not contain %q:\n%s", want, s)
		}
	}
}

func TestParseSums(t *testing.T) {
	got := parseSums("abc123  /opt/weft/bin/weft\ndef456  /opt/weft/state/c/hosts/h/pki/ca.crt\n")
	if got["/opt/weft/bin/weft"] != "abc123" || got["/opt/weft/state/c/hosts/h/pki/ca.crt"] != "def456" || len(got) != 2 {
		t.Errorf("parseSums = %v", got)
	}
}

func TestCleanupReportRoundTrip(t *testing.T) {
	rm := provider.Removed{Namespaces: []string{"weft.c.c.h.api-1", "weft.c.c.h.web-2"}, Processes: 7}
	if got := parseCleanup("noise\n" + CleanupReport(rm)); !reflect.DeepEqual(got, rm) {
		t.Errorf("parseCleanup(CleanupReport(%+v)) = %+v", rm, got)
	}
}

func TestUnitText(t *testing.T) {
	u := unitText("prod", "host1", []string{"/opt/weft/bin/weft", "agent", "--cluster", "prod"})
	for _, want := range []string{"ExecStart=/opt/weft/bin/weft agent --cluster prod\n", "Restart=always\n", "KillMode=process\n"} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if unitPath("prod", "host1") != "/etc/systemd/system/weft-prod-host1.service" {
		t.Errorf("unitPath = %s", unitPath("prod", "host1"))
	}
}

func TestRecordRoundTrip(t *testing.T) {
	root := t.TempDir()
	if ok, err := (&Provider{StateRoot: root}).Exists("c1"); ok || err != nil {
		t.Fatalf("Exists before any record = %v, %v", ok, err)
	}
	c := &spec.Cluster{Name: "c1", Dir: "/etc/weft", SSH: spec.SSH{User: "root", Port: 22},
		Hosts: []spec.Host{{Name: "host1", Address: netip.MustParseAddr("10.0.1.10"), InstallRoot: "/opt/weft"}, {Name: "host2", InstallRoot: "/opt/weft"}},
		Services: []spec.Service{
			{Name: "api", Host: "host2", Artifacts: []spec.Artifact{{Local: "bin/api", Remote: "/opt/api"}}},
			{Name: "web", Artifacts: []spec.Artifact{{Local: "/srv/web", Remote: "/opt/web"}}},
		}}
	rec, err := newRecord(c)
	if err != nil {
		t.Fatal(err)
	}
	wantArtifacts := map[string][]spec.Artifact{
		"host1": {{Local: "/srv/web", Remote: "/opt/web"}},
		"host2": {{Local: "/etc/weft/bin/api", Remote: "/opt/api"}, {Local: "/srv/web", Remote: "/opt/web"}},
	}
	if !reflect.DeepEqual(rec.Artifacts, wantArtifacts) {
		t.Errorf("artifacts by host = %+v, want %+v", rec.Artifacts, wantArtifacts)
	}
	rec.Init["host1"] = initSystemd
	if err := writeRecord(root, "c1", rec); err != nil {
		t.Fatal(err)
	}
	got, found, err := readRecord(root, "c1")
	if err != nil || !found || !reflect.DeepEqual(got, rec) {
		t.Fatalf("readRecord = %+v, %v, %v; want %+v", got, found, err, rec)
	}
	if !HasRecord(root, "c1") || HasRecord(root, "c2") {
		t.Error("HasRecord does not follow the record")
	}
	if info, err := os.Stat(recordPath(root, "c1")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("record mode: %v %v", info, err)
	}
}

func TestRemotePath(t *testing.T) {
	l := layout{root: "/srv/weft"}
	got, err := l.remotePath("/var/lib/weft", "/var/lib/weft/c1/hosts/h/pki/ca.crt")
	if err != nil || got != "/srv/weft/state/c1/hosts/h/pki/ca.crt" {
		t.Errorf("remotePath = %q, %v", got, err)
	}
	if _, err := l.remotePath("/var/lib/weft", "/etc/passwd"); err == nil {
		t.Error("a file outside the state root was mapped")
	}
}

func newHostKey(t *testing.T) xssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := xssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHostKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ssh", "known_hosts")
	addr := &net.TCPAddr{IP: net.ParseIP("10.0.1.10"), Port: 22}
	key, other := newHostKey(t), newHostKey(t)

	strict := &Provider{}
	err := strict.checkHostKey("host1", path)("10.0.1.10:22", addr, key)
	if err == nil || !strings.Contains(err.Error(), "--accept-new-host-keys") || !strings.Contains(err.Error(), xssh.FingerprintSHA256(key)) {
		t.Fatalf("unknown key without accepting: %v; want a refusal with the fingerprint and the flag", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a refused key was written")
	}

	accepting := &Provider{AcceptNewHostKeys: true}
	if err := accepting.checkHostKey("host1", path)("10.0.1.10:22", addr, key); err != nil {
		t.Fatalf("accepting a new key: %v", err)
	}
	if accepting.Changes() != 1 {
		t.Errorf("accepting a key counted %d changes, want 1", accepting.Changes())
	}
	// Now known: accepted by a strict provider, without a change.
	if err := strict.checkHostKey("host1", path)("10.0.1.10:22", addr, key); err != nil {
		t.Errorf("known key refused: %v", err)
	}
	// Another key for the same address: refused, even when accepting.
	err = accepting.checkHostKey("host1", path)("10.0.1.10:22", addr, other)
	if err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("changed key: %v; want a refusal", err)
	}
	b, _ := os.ReadFile(path)
	if strings.Count(string(b), "\n") != 1 {
		t.Errorf("known_hosts = %q, want one line", b)
	}
}
