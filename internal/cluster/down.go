package cluster

import (
	"context"
	"fmt"

	"github.com/weft-dev/weft/internal/provider"
)

// Down removes everything of the named cluster through its provider:
// namespaces, links, processes, mounts, state (all but the volumes when
// keepVolumes).
func Down(ctx context.Context, env Env, name string, keepVolumes bool) (provider.Removed, error) {
	rm, err := env.Provider.Destroy(ctx, name, keepVolumes)
	if err != nil {
		return rm, fmt.Errorf("removing cluster %s: %w", name, err)
	}
	return rm, nil
}
