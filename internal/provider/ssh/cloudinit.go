package ssh

import (
	"fmt"
	"strings"

	xssh "golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"github.com/weft-dev/weft/internal/spec"
)

// Download is where a fresh server fetches the weft binary from, and its
// sha256: the same binary `weft up` would copy, so that it copies nothing.
type Download struct {
	URL, SHA256 string
}

// CloudInit renders the user-data of a fresh VM that is to be host of the
// cluster: root accepts authorizedKey, the kernel modules load at boot,
// the cgroup v1 hierarchies weft needs are turned on (with one reboot where
// the image boots cgroup v2 only), iproute2 is there, and with a download
// the weft binary is put under the host's install root. `weft up` over ssh
// does the rest and finds nothing to copy.
func CloudInit(c *spec.Cluster, host string, authorizedKey string, weft *Download) (string, error) {
	if c.Provider != spec.ProviderSSH {
		return "", fmt.Errorf("cloud-init is for provider ssh; the file says provider %q: write `provider: ssh` and an ssh section", c.Provider)
	}
	h, ok := c.HostByName(host)
	if !ok {
		return "", fmt.Errorf("host %q is not in cluster %s: name one of its hosts", host, c.Name)
	}
	key := strings.TrimSpace(authorizedKey)
	if key == "" {
		return "", fmt.Errorf("no public key for root's authorized_keys (from ssh.key %s)", c.SSH.Key)
	}
	l := layoutOf(h)
	doc := map[string]any{
		"disable_root": false,
		"users":        []any{map[string]any{"name": "root", "ssh_authorized_keys": []string{key}}},
		"packages":     []string{"iproute2", "coreutils", "gawk"},
		"write_files": []any{
			map[string]any{"path": "/etc/modules-load.d/weft.conf", "content": strings.Join(moduleNames(), "\n") + "\n"},
			map[string]any{"path": "/etc/default/grub.d/90-weft.cfg",
				"content": "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX systemd.unified_cgroup_hierarchy=0\"\n"},
		},
	}
	runcmd := []any{
		append([]string{"modprobe", "-a"}, moduleNames()...),
	}
	if weft != nil {
		tmp := l.bin() + ".weft-tmp"
		runcmd = append(runcmd, []string{"sh", "-c", fmt.Sprintf(
			"mkdir -p %s && curl -fsSL %s -o %s && echo '%s  %s' | sha256sum -c - && chmod 755 %s && mv -f %s %s && echo %s > %s",
			shellQuote(l.root+"/bin"), shellQuote(weft.URL), shellQuote(tmp), weft.SHA256, tmp, shellQuote(tmp), shellQuote(tmp), shellQuote(l.bin()), c.Name, shellQuote(l.marker()))})
	}
	// Last: an image that boots cgroup v2 only reboots once into v1.
	runcmd = append(runcmd, []string{"sh", "-c", "[ -d /sys/fs/cgroup/pids ] || { update-grub && reboot; }"})
	doc["runcmd"] = runcmd
	body, err := yaml.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("rendering cloud-init: %w", err)
	}
	return fmt.Sprintf("#cloud-config\n# weft: host %s (%s) of cluster %s; weft up -f FILE installs and starts the rest over ssh.\n%s", h.Name, h.Address, c.Name, body), nil
}

// RenderCloudInit is CloudInit for the file's ssh.key (its public half is
// authorized) and, with weftURL, the binary exe (its sha256 is checked on
// the VM after the download).
func RenderCloudInit(c *spec.Cluster, host, weftURL, exe string) (string, error) {
	keyPath, err := expandHome(c.SSH.Key)
	if err != nil {
		return "", err
	}
	signer, err := loadKey(keyPath)
	if err != nil {
		return "", err
	}
	var dl *Download
	if weftURL != "" {
		sum, err := fileSHA256(exe)
		if err != nil {
			return "", err
		}
		dl = &Download{URL: weftURL, SHA256: sum}
	}
	return CloudInit(c, host, string(xssh.MarshalAuthorizedKey(signer.PublicKey())), dl)
}
