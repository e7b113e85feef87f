package pki

import "os"

// HostHandover lists the files of a host's certificates that exist under
// root, for a provider that puts them on the host's own server (ssh): the
// CA's certificate, the client pair, and a manager's server and peer
// pairs. The CA's key is never among them.
func HostHandover(root, cluster, host string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range []Files{ClientFiles(root, cluster, host), ServerFiles(root, cluster, host), PeerFiles(root, cluster, host)} {
		for _, p := range []string{f.CA, f.Cert, f.Key} {
			if seen[p] {
				continue
			}
			seen[p] = true
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}
