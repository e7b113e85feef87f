package agent

import (
	"time"

	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// The agent's loops that only follow the store (the VIP loop's applied
// file, the gateway loop's live weights and shifts) read the copy that the
// reconcile loop's mirror keeps current from its watch (Store.LastView),
// not etcd. Reading etcd every second on every host made the managers'
// members answer reads in seconds at 50 hosts, and host leases lapsed.
// The mirror never drops its copy on an error and reloads by itself when
// its watch breaks; until it has loaded, these loops wait, as the
// reconcile loop does.

// lastViewer is the part of the store these loops read.
type lastViewer interface {
	LastView() (snap store.Snapshot, synced time.Time, ok bool)
}

// followedSpec is the applied file as the agent's mirror has it; nil
// before the mirror has loaded or before the first apply.
func followedSpec(st lastViewer) *spec.Cluster {
	snap, _, ok := st.LastView()
	if !ok {
		return nil
	}
	return snap.Spec
}
