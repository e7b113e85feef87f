package ssh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/provider"
	"github.com/weft-dev/weft/internal/spec"
)

// destroyTimeout bounds the removal on one server.
const destroyTimeout = 2 * time.Minute

// CleanupReport is what `weft host-cleanup` prints of what it removed,
// for Destroy to read: one "netns NAME" line per namespace, then
// "processes N".
func CleanupReport(rm provider.Removed) string {
	var b strings.Builder
	for _, ns := range rm.Namespaces {
		fmt.Fprintf(&b, "netns %s\n", ns)
	}
	fmt.Fprintf(&b, "processes %d\n", rm.Processes)
	return b.String()
}

func parseCleanup(out string) provider.Removed {
	var rm provider.Removed
	for line := range strings.Lines(out) {
		key, val, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch key {
		case "netns":
			rm.Namespaces = append(rm.Namespaces, val)
		case "processes":
			rm.Processes, _ = strconv.Atoi(val)
		}
	}
	return rm
}

// Destroy removes from every server what weft put there: the unit (where
// systemd runs the agent), everything the agent made (`weft host-cleanup`:
// processes, container namespaces, links, nftables tables, state) and the
// install root, but only one that carries this cluster's marker; then the
// cluster's state on this machine (its certificates and the record of the
// servers). The record is kept while any server failed, so that `weft
// down` can be run again.
func (p *Provider) Destroy(ctx context.Context, cluster string, keepVolumes bool) (provider.Removed, error) {
	var removed provider.Removed
	rec, found, err := readRecord(p.StateRoot, cluster)
	if err != nil || !found {
		return removed, err
	}
	p.remember(cluster, rec)
	var (
		mu       sync.Mutex
		problems []error
		wg       sync.WaitGroup
	)
	for _, h := range rec.Hosts {
		wg.Go(func() {
			rm, err := p.destroyHost(ctx, cluster, rec, h, keepVolumes)
			mu.Lock()
			defer mu.Unlock()
			removed.Namespaces = append(removed.Namespaces, rm.Namespaces...)
			removed.Processes += rm.Processes
			if err != nil {
				problems = append(problems, fmt.Errorf("%s (%s): %w", h.Name, h.Address, err))
			}
		})
	}
	wg.Wait()
	_ = p.Close()
	if len(problems) > 0 {
		return removed, fmt.Errorf("removing cluster %s from its servers left something behind (run weft down again once the cause is fixed):\n%w", cluster, errors.Join(problems...))
	}
	if err := os.RemoveAll(naming.StateDir(p.StateRoot, cluster)); err != nil {
		return removed, fmt.Errorf("removing the state of cluster %s on this machine: %w", cluster, err)
	}
	removed.StateDir = true
	p.log().Info("destroyed ssh cluster", "cluster", cluster, "servers", len(rec.Hosts), "processes", removed.Processes)
	return removed, nil
}

func (p *Provider) destroyHost(ctx context.Context, cluster string, rec *record, h spec.Host, keepVolumes bool) (provider.Removed, error) {
	var removed provider.Removed
	ctx, cancel := context.WithTimeout(ctx, destroyTimeout)
	defer cancel()
	cl, err := p.client(ctx, cluster, rec.SSH, h)
	if err != nil {
		return removed, err
	}
	l := layoutOf(h)
	unit := unitName(cluster, h.Name)
	// The unit goes first (so systemd does not start the agent again), and
	// only if it is there: a server without systemd has no systemctl.
	stopUnit := fmt.Sprintf("if [ -e %s ]; then systemctl disable --now %s; rm -f %s; systemctl daemon-reload; fi",
		shellQuote(unitPath(cluster, h.Name)), unit, shellQuote(unitPath(cluster, h.Name)))
	if _, err := run(ctx, cl, stopUnit, nil); err != nil {
		return removed, fmt.Errorf("removing unit %s: %w", unit, err)
	}
	owned := fmt.Sprintf("[ \"$(cat %s 2>/dev/null)\" = %s ]", shellQuote(l.marker()), cluster)
	cleanup := []string{l.bin(), HostCleanupCommand, "--cluster", cluster, "--host", h.Name, "--state-root", l.stateRoot()}
	if keepVolumes {
		cleanup = append(cleanup, "--keep-volumes")
	}
	out, err := run(ctx, cl, fmt.Sprintf("if %s && [ -x %s ]; then %s; fi", owned, shellQuote(l.bin()), shellJoin(cleanup)), nil)
	removed = parseCleanup(string(out))
	if err != nil {
		return removed, fmt.Errorf("removing what the agent made: %w", err)
	}
	// Artifacts weft copied, listed in the root's manifest.
	unlist := fmt.Sprintf("if %s && [ -f %s ]; then while IFS= read -r f; do rm -f -- \"$f\"; done < %s; rm -f %s; fi",
		owned, shellQuote(l.manifest()), shellQuote(l.manifest()), shellQuote(l.manifest()))
	if out, err := run(ctx, cl, unlist, nil); err != nil {
		return removed, fmt.Errorf("removing artifacts: %w: %s", err, strings.TrimSpace(string(out)))
	}
	// With kept volumes, the install root keeps state/<cluster>/volumes
	// (and the marker, so a later up and down know it).
	rm := "rm -rf " + shellQuote(l.root)
	if keepVolumes {
		rm = "rm -rf " + shellQuote(l.root+"/bin")
	}
	if out, err := run(ctx, cl, fmt.Sprintf("if %s; then %s; fi", owned, rm), nil); err != nil {
		return removed, fmt.Errorf("removing the install root %s: %w: %s", l.root, err, strings.TrimSpace(string(out)))
	}
	return removed, nil
}
