package store

import (
	"context"

	"github.com/weft-dev/weft/internal/model"
)

// PutStatusForce writes a container's status even if this Store wrote the
// same value before: the agent uses it when the store's copy was lost or
// overwritten (a container that moved hosts, a deleted key).
func (s *Store) PutStatusForce(ctx context.Context, st model.ContainerStatus) error {
	s.statusMu.Lock()
	delete(s.statusWritten, st.Container)
	s.statusMu.Unlock()
	return s.PutStatus(ctx, st)
}
