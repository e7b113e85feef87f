package api

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/weft-dev/weft/internal/naming"
)

// AgentTimeout bounds one agent's status answer; agents answer within
// about 2.5s whatever is down (from the store, else from their last copy).
const AgentTimeout = 3 * time.Second

// NoClusterError means no agent socket of the cluster exists on this machine.
type NoClusterError struct{ Cluster string }

func (e *NoClusterError) Error() string {
	return fmt.Sprintf("cluster %s does not exist on this machine (start it with `weft up`)", e.Cluster)
}

// AgentSockets lists the cluster's agents on this machine: host -> socket.
func AgentSockets(stateRoot, cluster string) (map[string]string, error) {
	socks, _ := filepath.Glob(naming.AgentSocket(stateRoot, cluster, "*"))
	if len(socks) == 0 {
		return nil, &NoClusterError{Cluster: cluster}
	}
	out := map[string]string{}
	for _, s := range socks {
		out[filepath.Base(filepath.Dir(s))] = s
	}
	return out, nil
}

// ClusterStatus is what `weft status` shows: it asks every agent of the
// cluster on this machine at once and combines their answers (Combine). It
// returns within AgentTimeout whatever is down and says what it could not
// reach.
func ClusterStatus(ctx context.Context, stateRoot, cluster string) (Status, error) {
	socks, err := AgentSockets(stateRoot, cluster)
	if err != nil {
		return Status{}, err
	}
	return Combine(cluster, AskAll(ctx, socks, AgentTimeout))
}
