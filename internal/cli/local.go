package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/runtime"
)

// exec and logs need only the container's host, not the store: when no
// agent answers at all they find containers through the runtime's records
// on this machine's disk, and they enter a container by the pid its record
// holds now rather than the one a (possibly stale) status reported.

// statusOrRecords is clusterStatus, or when no agent answers, a status
// built from the runtime records of every host of the cluster on this
// machine.
func statusOrRecords(ctx context.Context, g *globals) (api.Status, error) {
	st, err := clusterStatus(ctx, g)
	if err == nil {
		return st, nil
	}
	name, nerr := g.clusterName()
	if nerr != nil {
		return api.Status{}, err
	}
	local, lerr := recordsStatus(g, name)
	if lerr != nil || len(local.Containers) == 0 {
		return api.Status{}, err
	}
	return local, nil
}

func recordsStatus(g *globals, cluster string) (api.Status, error) {
	hostDirs, _ := filepath.Glob(naming.HostStateDir(g.stateRoot, cluster, "*"))
	rt := &runtime.Runtime{StateRoot: g.stateRoot}
	out := api.Status{Cluster: cluster, Stale: true, Unreachable: []string{"agents: none answers; containers found from runtime records on disk"}}
	for _, dir := range hostDirs {
		host := filepath.Base(dir)
		recs, err := rt.Records(cluster, host)
		if err != nil {
			return api.Status{}, err
		}
		for _, r := range recs {
			out.Containers = append(out.Containers, model.ContainerStatus{
				Container: r.Container, Service: r.Service, Host: host, Pid: r.Pid,
				State: model.StateRunning, Restarts: r.Restarts,
				Netns: naming.ContainerNetns(cluster, host, r.Container),
			})
		}
	}
	return out, nil
}

// withRecordedPid replaces c's pid by the one in its runtime record on its
// host, when that record exists and its process is alive.
func withRecordedPid(g *globals, cluster string, c model.ContainerStatus) model.ContainerStatus {
	recs, err := (&runtime.Runtime{StateRoot: g.stateRoot}).Records(cluster, c.Host)
	if err != nil {
		return c
	}
	for _, r := range recs {
		if r.Container == c.Container && r.Pid > 0 && pidAlive(r.Pid) {
			c.Pid, c.State = r.Pid, model.StateRunning
		}
	}
	return c
}

func pidAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// containerLogs streams a container's output through its host's agent, or
// reads the log file itself when that agent does not answer.
func containerLogs(ctx context.Context, g *globals, cluster string, c model.ContainerStatus, follow bool) error {
	agents, err := g.agents(cluster)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer agents.Close()
	cl := agents.Client(c.Host)
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, herr := cl.Health(hctx)
	cancel()
	if herr == nil || agents.Remote() {
		return cl.Logs(ctx, c.Container, follow, g.stdout)
	}
	path := (&runtime.Runtime{StateRoot: g.stateRoot}).LogPath(cluster, c.Host, c.Container)
	f, err := os.Open(path)
	if err != nil {
		return &exitError{code: 1, err: errors.Join(fmt.Errorf("the agent of %s does not answer: %w", c.Host, herr), fmt.Errorf("reading %s's log: %w", c.Container, err))}
	}
	defer f.Close()
	fmt.Fprintf(g.stderr, "weft: the agent of %s does not answer; printing %s as it is\n", c.Host, path)
	_, err = io.Copy(g.stdout, f)
	return err
}
