package cluster

import (
	"fmt"
	"log/slog"

	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/provider"
	"github.com/weft-dev/weft/internal/spec"
)

// *lab.Lab is a provider.
var _ provider.Provider = (*lab.Lab)(nil)

// NewProvider returns the provider a cluster file's `provider:` names; this
// is the one place that chooses it. spec validation refuses any other name
// first, so the error here only guards a caller that skipped validation.
func NewProvider(kind, stateRoot string, log *slog.Logger) (provider.Provider, error) {
	switch kind {
	case spec.DefaultProvider:
		return &lab.Lab{StateRoot: stateRoot, Log: log}, nil
	default:
		return nil, fmt.Errorf("provider %q: unknown provider; only `lab` is supported: write `provider: lab` or leave it out", kind)
	}
}
