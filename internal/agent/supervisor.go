package agent

import (
	"context"
	"time"

	"github.com/weft-dev/weft/internal/runtime"
)

// supervisor is the processes of this host as the agent runs them: the
// containers' records on disk, supervising and stopping a container, the
// host's own daemons (the resolver). runtimeSupervisor is the real one;
// the tests use a fake that starts nothing.
type supervisor interface {
	// Records lists the containers with a record on this host.
	Records(cluster, host string) ([]runtime.Record, error)
	// Supervise starts or adopts the container's process and keeps it
	// running until ctx ends or Stop is called.
	Supervise(ctx context.Context, cfg runtime.Config, onEvent func(runtime.Event)) error
	// Stop terminates the container's process and removes its record.
	Stop(ctx context.Context, cluster, host, container string, grace time.Duration) error
	// EnsureDaemon keeps one process of the host's own running.
	EnsureDaemon(dir, cgroupRel, name string, argv []string) (pid int, started bool, err error)
	// LogPath is the file the container's output goes to.
	LogPath(cluster, host, container string) string
	// UserNSFor says why the runtime cannot give a container the user
	// namespace m; nil when it can.
	UserNSFor(m runtime.IDMap, image bool) error
}

// runtimeSupervisor is supervisor through internal/runtime.
type runtimeSupervisor struct{ *runtime.Runtime }

func (runtimeSupervisor) EnsureDaemon(dir, cgroupRel, name string, argv []string) (int, bool, error) {
	return runtime.EnsureDaemon(dir, cgroupRel, name, argv)
}
