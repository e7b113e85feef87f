package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// The bootstrap file tells a fresh agent who it is and where the managers
// are, before any store exists. Everything after that comes from the store.
// BootstrapPath is the cluster file a host's agent starts from.
func BootstrapPath(root, cluster, host string) string {
	return filepath.Join(naming.HostStateDir(root, cluster, host), "bootstrap.json")
}

// WriteBootstrap records the cluster file an agent starts from; it rewrites
// the file only when the content differs.
func WriteBootstrap(root string, c *spec.Cluster, host string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding bootstrap of host %s: %w", host, err)
	}
	p := BootstrapPath(root, c.Name, host)
	if old, err := os.ReadFile(p); err == nil && string(old) == string(b) {
		return os.Chmod(p, 0o600) // one written by an older weft was 0644
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("creating state dir of host %s: %w", host, err)
	}
	tmp := p + ".tmp"
	// The file holds the whole spec, secrets in env included: root only.
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing bootstrap of host %s: %w", host, err)
	}
	return os.Rename(tmp, p)
}

func readBootstrap(root, cluster, host string) (*spec.Cluster, error) {
	b, err := os.ReadFile(BootstrapPath(root, cluster, host))
	if err != nil {
		return nil, fmt.Errorf("reading bootstrap of host %s (start agents with `weft up`): %w", host, err)
	}
	var c spec.Cluster
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decoding bootstrap of host %s: %w", host, err)
	}
	return &c, nil
}
