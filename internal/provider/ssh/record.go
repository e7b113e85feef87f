package ssh

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// recordFile is where this machine keeps the servers of an ssh cluster, so
// that `weft down --cluster NAME` finds them without the file.
const recordFile = "ssh.json"

// record is what Destroy and the later commands need of the file.
type record struct {
	SSH   spec.SSH          `json:"ssh"`
	Hosts []spec.Host       `json:"hosts"`
	Init  map[string]string `json:"init"` // host -> initSystemd or initSupervisor, from the preflight
	// Artifacts are the files each host gets, with Local an absolute path
	// of this machine.
	Artifacts map[string][]spec.Artifact `json:"artifacts,omitempty"`
}

func newRecord(c *spec.Cluster) (*record, error) {
	r := &record{SSH: c.SSH, Hosts: c.Hosts, Init: map[string]string{}, Artifacts: map[string][]spec.Artifact{}}
	for _, s := range c.Services {
		for _, a := range s.Artifacts {
			local, err := expandHome(a.LocalPath(c.Dir))
			if err != nil {
				return nil, err
			}
			for _, h := range c.HostsOf(s) {
				r.Artifacts[h] = append(r.Artifacts[h], spec.Artifact{Local: local, Remote: a.Remote})
			}
		}
	}
	return r, nil
}

func (r *record) host(name string) (spec.Host, bool) {
	for _, h := range r.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return spec.Host{}, false
}

func recordPath(stateRoot, cluster string) string {
	return filepath.Join(naming.StateDir(stateRoot, cluster), recordFile)
}

// HasRecord says whether this machine brought cluster up with provider ssh.
func HasRecord(stateRoot, cluster string) bool {
	_, err := os.Stat(recordPath(stateRoot, cluster))
	return err == nil
}

func readRecord(stateRoot, cluster string) (*record, bool, error) {
	b, err := os.ReadFile(recordPath(stateRoot, cluster))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the servers of cluster %s: %w", cluster, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, false, fmt.Errorf("decoding %s: %w", recordPath(stateRoot, cluster), err)
	}
	if r.Init == nil {
		r.Init = map[string]string{}
	}
	if r.Artifacts == nil {
		r.Artifacts = map[string][]spec.Artifact{}
	}
	return &r, true, nil
}

func writeRecord(stateRoot, cluster string, r *record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the servers of cluster %s: %w", cluster, err)
	}
	p := recordPath(stateRoot, cluster)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("creating the state directory of cluster %s: %w", cluster, err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// layout is where weft lives on one server, below its install root.
type layout struct{ root string }

func layoutOf(h spec.Host) layout { return layout{root: h.InstallRoot} }

// marker names the cluster that owns the install root: Destroy removes
// only a root it finds its own cluster's marker in.
func (l layout) marker() string    { return l.root + "/.weft-cluster" }
func (l layout) manifest() string  { return l.root + "/artifacts.list" } // artifacts copied outside the root
func (l layout) bin() string       { return l.root + "/bin/weft" }
func (l layout) stateRoot() string { return l.root + "/state" }
func (l layout) agentSocket(cluster, host string) string {
	return naming.AgentSocket(l.stateRoot(), cluster, host)
}

// remotePath is where a file below this machine's state root goes below
// the server's.
func (l layout) remotePath(localRoot, local string) (string, error) {
	rel, err := filepath.Rel(localRoot, local)
	if err != nil || rel == ".." || filepath.IsAbs(rel) || len(rel) > 2 && rel[:3] == "../" {
		return "", fmt.Errorf("%s is not below the state root %s", local, localRoot)
	}
	return filepath.Join(l.stateRoot(), rel), nil
}
