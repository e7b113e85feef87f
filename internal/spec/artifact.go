package spec

import (
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Artifact is one file of this machine that provider ssh copies to every
// host that may run its service (the service's host, its hosts, or every
// host), whenever its sha256 differs there; `weft down` removes it again.
// The lab shares this machine's files and ignores artifacts.
//
//	artifacts: {./bin/api: /opt/shop/api}
type Artifact struct {
	Local  string `json:"local"`  // as written; LocalPath resolves it
	Remote string `json:"remote"` // absolute path on the host
}

// LocalPath is the artifact's file on this machine: a relative path is
// beside the cluster file (dir); ~ is left to the caller.
func (a Artifact) LocalPath(dir string) string { return besideFile(dir, a.Local) }

func (d *decoder) artifacts(n *yaml.Node, path string) []Artifact {
	var out []Artifact
	d.namedMapping(n, path, "artifact", "`artifacts: {./bin/api: /opt/shop/api}`", func(local string, v *yaml.Node, p string) {
		out = append(out, Artifact{Local: local, Remote: d.str(v, p)})
	})
	return out
}

// HostsOf returns the hosts that may run service s: its host, its hosts, or
// every host of the file.
func (c *Cluster) HostsOf(s Service) []string {
	switch {
	case s.Host != "":
		return []string{s.Host}
	case len(s.Hosts) > 0:
		return s.Hosts
	}
	names := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		names[i] = h.Name
	}
	return names
}

func validateArtifacts(ps *Problems, field string, artifacts []Artifact) {
	seen := map[string]string{}
	for _, a := range artifacts {
		f := field + "." + a.Local
		switch {
		case a.Remote == "":
			ps.add(f, nil, "missing the path on the host", "write `"+a.Local+": /opt/app/"+filepath.Base(a.Local)+"`")
			continue
		case !filepath.IsAbs(a.Remote) || filepath.Clean(a.Remote) != a.Remote:
			ps.add(f, a.Remote, "the path on the host must be absolute and clean", "write it like /opt/app/"+filepath.Base(a.Local))
			continue
		case strings.ContainsAny(a.Remote, " \t\n'\"\\$`;&|*?"):
			ps.add(f, a.Remote, "holds spaces, quotes or shell characters", "pick a plain path such as /opt/app/"+filepath.Base(a.Local))
			continue
		}
		if other, dup := seen[a.Remote]; dup {
			ps.add(f, a.Remote, fmt.Sprintf("%s goes to the same path", other), "give each artifact its own path on the host")
			continue
		}
		seen[a.Remote] = a.Local
	}
}
