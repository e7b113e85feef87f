package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
)

// Run runs argv inside the host's network namespace (the process is forked
// from a thread switched into it) with stdin, and returns its combined
// output. A non-zero exit is an error carrying the output.
func (l *Lab) Run(ctx context.Context, cluster, host string, argv []string, stdin io.Reader) ([]byte, error) {
	if err := validName("cluster", cluster); err != nil {
		return nil, err
	}
	if err := validName("host", host); err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("running a command on host %s: no command given", host)
	}
	nsName := naming.HostNetns(cluster, host)
	hostNs, err := netns.GetFromPath(netnsPath(nsName))
	if err != nil {
		return nil, fmt.Errorf("host %s of cluster %s has no namespace %s (build the lab first: weft up): %w", host, cluster, nsName, err)
	}
	defer hostNs.Close()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &out
	if err := nsthread.Do(hostNs, cmd.Start); err != nil {
		return nil, fmt.Errorf("running %s on host %s: %w", argv[0], host, err)
	}
	if err := cmd.Wait(); err != nil {
		return out.Bytes(), fmt.Errorf("running %s on host %s: %w: %s", strings.Join(argv, " "), host, err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}
