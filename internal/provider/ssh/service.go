package ssh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/weft-dev/weft/internal/agent"
	"github.com/weft-dev/weft/internal/pki"
	"github.com/weft-dev/weft/internal/spec"
)

// startTimeout bounds starting the agent on one server.
const startTimeout = time.Minute

// unitPath is the systemd unit of a host's agent.
func unitPath(cluster, host string) string {
	return "/etc/systemd/system/" + unitName(cluster, host)
}

func unitName(cluster, host string) string { return "weft-" + cluster + "-" + host + ".service" }

// unitText is the unit that keeps the agent running. KillMode=process: a
// restart of the agent must not kill its containers (a new agent adopts
// them), and `weft down` stops them itself.
func unitText(cluster, host string, argv []string) string {
	return fmt.Sprintf(`# Written by weft up; weft down removes it.
[Unit]
Description=weft agent of host %s of cluster %s
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=%s
Restart=always
RestartSec=1
KillMode=process

[Install]
WantedBy=multi-user.target
`, host, cluster, shellJoin(argv))
}

// StartAgent installs weft on the host's server and makes sure its agent
// runs. exe is this machine's weft binary (copied when its hash differs);
// args are the agent's arguments for this machine, whose --state-root is
// replaced by the server's. The certificates of the host and the CA's
// certificate (never its key) and the host's bootstrap file go along.
func (p *Provider) StartAgent(ctx context.Context, cluster, host, exe string, args []string) (int, error) {
	cl, h, err := p.hostClient(ctx, cluster, host)
	if err != nil {
		return 0, err
	}
	rec, err := p.record(cluster)
	if err != nil {
		return 0, err
	}
	l := layoutOf(h)
	if err := p.claimRoot(ctx, cl, cluster, h); err != nil {
		return 0, err
	}
	files, err := p.handover(cluster, host, exe, l)
	if err != nil {
		return 0, err
	}
	artifacts, err := artifactUploads(rec.Artifacts[host])
	if err != nil {
		return 0, err
	}
	copied, err := syncFiles(ctx, cl, append(files, artifacts...))
	for _, f := range copied {
		p.changed(host, "copied %s", f)
	}
	if merr := recordArtifacts(ctx, cl, l, artifacts, copied); merr != nil {
		err = errors.Join(err, merr)
	}
	if err != nil {
		return 0, fmt.Errorf("installing weft on %s: %w", host, err)
	}
	binChanged := len(copied) > 0 && copied[0] == l.bin()
	argv := append([]string{l.bin()}, remoteArgs(args, l.stateRoot())...)
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if rec.Init[host] == initSystemd {
		return p.startUnit(ctx, cl, cluster, host, argv, binChanged)
	}
	// The supervisor keeps the running agent; after a new binary, the
	// agent's next restart runs it.
	start := append([]string{l.bin(), HostStartCommand, "--cluster", cluster, "--host", host, "--state-root", l.stateRoot(), "--"}, argv...)
	out, err := run(ctx, cl, shellJoin(start), nil)
	if err != nil {
		return 0, fmt.Errorf("starting the agent on %s: %w", host, err)
	}
	// The answer is the last line (warnings may come before it).
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	word, pidText, _ := strings.Cut(lines[len(lines)-1], " ")
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		return 0, fmt.Errorf("starting the agent on %s: unexpected answer %q", host, out)
	}
	if word == StartedWord(true) {
		p.changed(host, "started the host supervisor (agent pid %d)", pid)
	}
	return pid, nil
}

// claimRoot makes the install root with the cluster's marker, once.
func (p *Provider) claimRoot(ctx context.Context, cl *xssh.Client, cluster string, h spec.Host) error {
	l := layoutOf(h)
	cmd := fmt.Sprintf("if [ \"$(cat %s 2>/dev/null)\" != %s ]; then mkdir -p %s && chmod 755 %s && echo %s > %s && echo claimed; fi",
		shellQuote(l.marker()), cluster, shellQuote(l.root), shellQuote(l.root), cluster, shellQuote(l.marker()))
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	out, err := run(ctx, cl, cmd, nil)
	if err != nil {
		return fmt.Errorf("making the install root %s on %s: %w", l.root, h.Name, err)
	}
	if strings.TrimSpace(string(out)) == "claimed" {
		p.changed(h.Name, "made the install root %s", l.root)
	}
	return nil
}

// handover lists what a host's server needs from this machine: the binary
// first, then the host's certificates, the CA's certificate and the
// bootstrap file, each at the same place below the server's state root.
func (p *Provider) handover(cluster, host, exe string, l layout) ([]upload, error) {
	root, err := filepath.Abs(p.StateRoot)
	if err != nil {
		return nil, fmt.Errorf("resolving the state root %s: %w", p.StateRoot, err)
	}
	files := []upload{{local: exe, remote: l.bin(), mode: 0o755}}
	for _, local := range append(pki.HostHandover(root, cluster, host), agent.BootstrapPath(root, cluster, host)) {
		if _, err := os.Stat(local); err != nil {
			return nil, fmt.Errorf("handing over %s to %s: %w", local, host, err)
		}
		remote, err := l.remotePath(root, local)
		if err != nil {
			return nil, err
		}
		files = append(files, upload{local: local, remote: remote, mode: 0o600})
	}
	return files, nil
}

// artifactUploads are a host's artifacts with the modes of their files.
func artifactUploads(list []spec.Artifact) ([]upload, error) {
	out := make([]upload, 0, len(list))
	for _, a := range list {
		info, err := os.Stat(a.Local)
		if err != nil {
			return nil, fmt.Errorf("artifact %s: %w", a.Local, err)
		}
		out = append(out, upload{local: a.Local, remote: a.Remote, mode: info.Mode().Perm()})
	}
	return out, nil
}

// recordArtifacts adds every copied artifact to the manifest under the
// install root, which `weft down` removes them by (they live outside it).
func recordArtifacts(ctx context.Context, cl *xssh.Client, l layout, artifacts []upload, copied []string) error {
	var lines []string
	for _, a := range artifacts {
		if slices.Contains(copied, a.remote) {
			lines = append(lines, fmt.Sprintf("grep -qxF %s %s 2>/dev/null || echo %s >> %s", shellQuote(a.remote), shellQuote(l.manifest()), shellQuote(a.remote), shellQuote(l.manifest())))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	if _, err := run(ctx, cl, strings.Join(lines, "\n"), nil); err != nil {
		return fmt.Errorf("recording artifacts in %s: %w", l.manifest(), err)
	}
	return nil
}

// remoteArgs is args with the value of --state-root replaced.
func remoteArgs(args []string, stateRoot string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "--state-root" {
			out[i+1] = stateRoot
		}
	}
	return out
}

// startUnit writes the host's unit when it differs, and (re)starts it when
// it changed, the binary changed, or it does not run.
func (p *Provider) startUnit(ctx context.Context, cl *xssh.Client, cluster, host string, argv []string, binChanged bool) (int, error) {
	unit := unitPath(cluster, host)
	text := unitText(cluster, host, argv)
	cmd := fmt.Sprintf(`set -e
u=%s
if [ "$(cat "$u" 2>/dev/null)" != %s ]; then
  printf '%%s' %s > "$u.weft-tmp" && mv -f "$u.weft-tmp" "$u"
  systemctl daemon-reload
  echo wrote
fi
`, shellQuote(unit), shellQuote(strings.TrimRight(text, "\n")), shellQuote(text))
	out, err := run(ctx, cl, cmd, nil)
	if err != nil {
		return 0, fmt.Errorf("writing the unit of %s: %w", host, err)
	}
	name := unitName(cluster, host)
	var action string
	switch {
	case strings.Contains(string(out), "wrote") || binChanged:
		action = "systemctl enable " + name + " && systemctl restart " + name + " && echo restarted"
	default:
		action = "systemctl is-active --quiet " + name + " || { systemctl enable --now " + name + " && echo restarted; }"
	}
	out, err = run(ctx, cl, action+"; systemctl show -p MainPID --value "+name, nil)
	if err != nil {
		return 0, fmt.Errorf("starting %s on %s: %w", name, host, err)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return 0, fmt.Errorf("starting %s on %s: no pid", name, host)
	}
	if lines[0] == "restarted" {
		p.changed(host, "started %s", name)
	}
	pid, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil {
		return 0, fmt.Errorf("starting %s on %s: unexpected answer %q", name, host, out)
	}
	return pid, nil
}
