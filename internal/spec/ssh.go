package spec

import (
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weft-dev/weft/internal/naming"
)

// ProviderSSH is the provider of servers that already exist and are reached
// over ssh (internal/provider/ssh).
const ProviderSSH = "ssh"

// Defaults of the ssh section.
const (
	DefaultSSHPort        = 22
	DefaultSSHKnownHosts  = "~/.ssh/known_hosts"
	DefaultSSHInstallRoot = "/var/lib/weft"
)

// SSH is how provider ssh reaches and fills the servers.
type SSH struct {
	User       string `json:"user,omitempty"`
	Key        string `json:"key,omitempty"`         // private key file; ~ and paths relative to the file resolved
	KnownHosts string `json:"known_hosts,omitempty"` // default ~/.ssh/known_hosts
	Port       int    `json:"port,omitempty"`        // default 22
	// InstallRoot is where weft lives on a server (its binary, state,
	// certificates, logs); default /var/lib/weft, which containers never
	// see (unlike /opt, a system directory shown in every container).
	// hosts[].install_root overrides it per host.
	InstallRoot string `json:"install_root,omitempty"`
}

// IsZero says whether the file wrote no ssh section.
func (s SSH) IsZero() bool { return s == SSH{} }

func (d *decoder) ssh(n *yaml.Node, path string, s *SSH) {
	d.mapping(n, path, fieldReaders{
		"user":         func(v *yaml.Node, p string) { s.User = d.str(v, p) },
		"key":          func(v *yaml.Node, p string) { s.Key = d.str(v, p) },
		"known_hosts":  func(v *yaml.Node, p string) { s.KnownHosts = d.str(v, p) },
		"port":         func(v *yaml.Node, p string) { s.Port = d.integer(v, p) },
		"install_root": func(v *yaml.Node, p string) { s.InstallRoot = d.str(v, p) },
	})
}

// applyDefaults fills the ssh section of a file with provider ssh; a
// relative key or known_hosts path means one beside the file (~ stays for
// the provider to expand: it is the home of whoever runs weft).
func (s *SSH) applyDefaults(dir string) {
	if s.Port == 0 {
		s.Port = DefaultSSHPort
	}
	if s.KnownHosts == "" {
		s.KnownHosts = DefaultSSHKnownHosts
	}
	if s.InstallRoot == "" {
		s.InstallRoot = DefaultSSHInstallRoot
	}
	s.Key = besideFile(dir, s.Key)
	s.KnownHosts = besideFile(dir, s.KnownHosts)
}

func besideFile(dir, p string) string {
	if p == "" || dir == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "~") {
		return p
	}
	return filepath.Join(dir, p)
}

// validateSSH checks the ssh section and the hosts' install roots: required
// with provider ssh, refused with any other provider (they would be ignored).
func (c *Cluster) validateSSH(ps *Problems) {
	if c.Provider != ProviderSSH {
		if !c.SSH.IsZero() {
			ps.add("ssh", nil, "only provider ssh uses an ssh section; provider "+c.Provider+" would ignore it",
				"write `provider: ssh`, or remove the ssh section")
		}
		for i, h := range c.Hosts {
			if h.InstallRoot != "" {
				ps.add(index("hosts", i)+".install_root", h.InstallRoot, "only provider ssh installs weft on a host",
					"write `provider: ssh`, or remove install_root")
			}
		}
		return
	}
	s := c.SSH
	if s.User == "" {
		ps.add("ssh.user", nil, "missing; weft logs into every server as this user, which must be root there (the agent makes links, namespaces and nftables tables)",
			"add `user: root` under ssh")
	}
	if s.Key == "" {
		ps.add("ssh.key", nil, "missing; weft logs in with a private key, never a password",
			"add `key: ~/.ssh/id_ed25519` (a key the servers' authorized_keys accept) under ssh")
	}
	if s.Port < 1 || s.Port > 65535 {
		ps.add("ssh.port", s.Port, "outside 1..65535", "use the servers' sshd port, or leave it out for 22")
	}
	if p := installRootProblem(s.InstallRoot); p != "" {
		ps.add("ssh.install_root", s.InstallRoot, p, "use an absolute directory of its own, e.g. "+DefaultSSHInstallRoot)
	}
	for i, h := range c.Hosts {
		if h.InstallRoot == s.InstallRoot {
			continue // reported once, above
		}
		if p := installRootProblem(h.InstallRoot); p != "" {
			ps.add(index("hosts", i)+".install_root", h.InstallRoot, p, fmt.Sprintf("use an absolute directory of its own, e.g. %s/%s, or leave it out for ssh.install_root", DefaultSSHInstallRoot, h.Name))
		}
	}
}

// installRootProblem says what is wrong with an install root: `weft down`
// removes the whole directory, so it must be weft's own.
func installRootProblem(root string) string {
	switch {
	case root == "":
		return "missing"
	case !filepath.IsAbs(root):
		return "not an absolute path"
	case filepath.Clean(root) != root:
		return "not a clean path (no trailing '/', '.' or '..')"
	case strings.ContainsAny(root, " \t\n'\"\\$`;&|*?"):
		return "holds spaces, quotes or shell characters"
	case strings.Count(root, "/") < 2:
		return "a top-level directory: weft down removes the install root whole"
	}
	for _, d := range naming.HostSystemDirs() {
		if root == d || strings.HasPrefix(root, d+"/") {
			return "below " + d + ", which every container sees read-only: the host's keys would be readable in containers"
		}
	}
	return ""
}
