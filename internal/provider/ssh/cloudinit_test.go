package ssh

import (
	"net/netip"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/weft-dev/weft/internal/spec"
)

func TestCloudInit(t *testing.T) {
	c := &spec.Cluster{Name: "prod", Provider: spec.ProviderSSH, SSH: spec.SSH{Key: "/k/id"},
		Hosts: []spec.Host{{Name: "host1", Address: netip.MustParseAddr("10.0.1.10"), InstallRoot: "/opt/weft"}}}
	out, err := CloudInit(c, "host1", "ssh-ed25519 AAAA op@laptop\n", &Download{URL: "https://example.com/weft", SHA256: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "#cloud-config\n") {
		t.Errorf("no #cloud-config header:\n%s", out)
	}
	var doc struct {
		Users []struct {
			Name string   `yaml:"name"`
			Keys []string `yaml:"ssh_authorized_keys"`
		} `yaml:"users"`
		Runcmd [][]string `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	if len(doc.Users) != 1 || doc.Users[0].Name != "root" || len(doc.Users[0].Keys) != 1 || doc.Users[0].Keys[0] != "ssh-ed25519 AAAA op@laptop" {
		t.Errorf("users = %+v", doc.Users)
	}
	all := out
	for _, want := range []string{"vxlan", "nf_tables", "systemd.unified_cgroup_hierarchy=0", "abc  /opt/weft/bin/weft.weft-tmp", "/opt/weft/.weft-cluster"} {
		if !strings.Contains(all, want) {
			t.Errorf("user-data lacks %q:\n%s", want, out)
		}
	}

	for _, tc := range []struct {
		name string
		mod  func(*spec.Cluster)
		host string
		key  string
		want string
	}{
		{"lab file", func(c *spec.Cluster) { c.Provider = spec.DefaultProvider }, "host1", "k", "provider ssh"},
		{"unknown host", func(*spec.Cluster) {}, "host9", "k", "not in cluster"},
		{"no key", func(*spec.Cluster) {}, "host1", " \n", "ssh.key /k/id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := *c
			tc.mod(&cc)
			if _, err := CloudInit(&cc, tc.host, tc.key, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
