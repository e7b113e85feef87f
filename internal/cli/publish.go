package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/cluster"
)

// newPublishCmd is the process that forwards the cluster's published
// loopback ports to its healthy gateways, dialling from inside the lab.
func newPublishCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "publish",
		Short:  "Forward the cluster's published loopback ports to its gateways (started by weft up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.cluster == "" {
				return fmt.Errorf("--cluster is required")
			}
			log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			return cluster.RunPublisher(cmd.Context(), g.stateRoot, g.cluster, log)
		},
	}
}
