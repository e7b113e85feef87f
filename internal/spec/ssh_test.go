package spec

import (
	"strings"
	"testing"
)

// sshBase is a valid file of provider ssh.
const sshBase = `version: 1
name: real1
provider: ssh
ssh: {user: root, key: keys/id_ed25519}
network:
  cidr: 10.0.0.0/16
  subnets: {a: 10.0.1.0/24, b: 10.0.2.0/24}
overlay: {vni: 444}
hosts:
  - {name: host1, subnet: a, address: 10.0.1.10}
  - {name: host2, subnet: b, address: 10.0.2.20, install_root: /srv/weft2}
services:
  api:
    command: [/usr/local/bin/api]
    port: 8080
`

func TestSSHDefaults(t *testing.T) {
	c, err := Parse([]byte(sshBase), "/etc/weft")
	if err != nil {
		t.Fatal(err)
	}
	want := SSH{User: "root", Key: "/etc/weft/keys/id_ed25519", KnownHosts: DefaultSSHKnownHosts, Port: 22, InstallRoot: DefaultSSHInstallRoot}
	if c.SSH != want {
		t.Errorf("ssh = %+v, want %+v", c.SSH, want)
	}
	if c.Hosts[0].InstallRoot != DefaultSSHInstallRoot || c.Hosts[1].InstallRoot != "/srv/weft2" {
		t.Errorf("install roots = %q, %q", c.Hosts[0].InstallRoot, c.Hosts[1].InstallRoot)
	}
	if c.Hosts[1].Address.String() != "10.0.2.20" {
		t.Errorf("host2 address = %s", c.Hosts[1].Address)
	}
}

func TestSSHRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edits  []string
		field  string
		inText string // in the message or the fix
	}{
		{"unknown provider", []string{"provider: ssh", "provider: aws"}, "provider", "provider: ssh"},
		{"no user", []string{"user: root, ", ""}, "ssh.user", "user: root"},
		{"no key", []string{", key: keys/id_ed25519", ""}, "ssh.key", "key:"},
		{"bad port", []string{"{user: root,", "{port: 70000, user: root,"}, "ssh.port", "65535"},
		{"relative install root", []string{"{user: root,", "{install_root: opt/weft, user: root,"}, "ssh.install_root", "absolute"},
		{"top-level install root", []string{"{user: root,", "{install_root: /srv, user: root,"}, "ssh.install_root", "top-level"},
		{"install root containers see", []string{"{user: root,", "{install_root: /opt/weft, user: root,"}, "ssh.install_root", "every container sees"},
		{"unclean host install root", []string{"/srv/weft2", "/srv/../weft2"}, "hosts[1].install_root", "clean"},
		{"shell in install root", []string{"/srv/weft2", "/srv/we;ft"}, "hosts[1].install_root", "shell"},
		{"no address", []string{", address: 10.0.1.10", ""}, "hosts[0].address", "server's address"},
		{"ssh with lab", []string{"provider: ssh", "provider: lab", ", install_root: /srv/weft2", ""}, "ssh", "provider: ssh"},
		{"install root with lab", []string{"provider: ssh\nssh: {user: root, key: keys/id_ed25519}", "provider: lab"}, "hosts[1].install_root", "provider: ssh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := parseProblems(t, edit(t, sshBase, tc.edits...))
			for _, p := range ps {
				if p.Field == tc.field && strings.Contains(p.Message+" "+p.Fix, tc.inText) {
					return
				}
			}
			t.Errorf("no problem on %s mentioning %q; got %v", tc.field, tc.inText, ps)
		})
	}
}

func TestArtifacts(t *testing.T) {
	text := edit(t, sshBase, "    command: [/usr/local/bin/api]\n", "    command: [/opt/api/api]\n    host: host2\n    artifacts: {bin/api: /opt/api/api, /etc/api.conf: /opt/api/api.conf}\n")
	c, err := Parse([]byte(text), "/etc/weft")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	want := []Artifact{{Local: "bin/api", Remote: "/opt/api/api"}, {Local: "/etc/api.conf", Remote: "/opt/api/api.conf"}}
	if len(s.Artifacts) != 2 || s.Artifacts[0] != want[0] || s.Artifacts[1] != want[1] {
		t.Errorf("artifacts = %+v, want %+v", s.Artifacts, want)
	}
	if p := s.Artifacts[0].LocalPath(c.Dir); p != "/etc/weft/bin/api" {
		t.Errorf("LocalPath = %s, want it beside the file", p)
	}
	if got := c.HostsOf(s); len(got) != 1 || got[0] != "host2" {
		t.Errorf("HostsOf = %v, want [host2]", got)
	}
	s.Host = ""
	if got := c.HostsOf(s); len(got) != 2 {
		t.Errorf("HostsOf an unpinned service = %v, want every host", got)
	}

	for _, tc := range []struct{ name, artifacts, field, inText string }{
		{"relative remote", "{bin/api: opt/api}", "services.api.artifacts.bin/api", "absolute"},
		{"no remote", "{bin/api: }", "services.api.artifacts.bin/api", "missing"},
		{"shell", "{bin/api: /opt/a;b}", "services.api.artifacts.bin/api", "shell"},
		{"same remote", "{bin/api: /opt/a, bin/b: /opt/a}", "services.api.artifacts.bin/b", "same path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := parseProblems(t, edit(t, sshBase, "    command: [/usr/local/bin/api]\n", "    command: [/usr/local/bin/api]\n    artifacts: "+tc.artifacts+"\n"))
			for _, p := range ps {
				if p.Field == tc.field && strings.Contains(p.Message+" "+p.Fix, tc.inText) {
					return
				}
			}
			t.Errorf("no problem on %s mentioning %q; got %v", tc.field, tc.inText, ps)
		})
	}
}
