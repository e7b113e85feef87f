package cli

import (
	"errors"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/lab"
)

// newHostSuperviseCmd is a lab host's supervisor: it keeps the host's agent
// running (see lab.RunSupervisor); `weft up` starts it through lab.StartAgent.
func newHostSuperviseCmd(g *globals) *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use:    lab.SupervisorCommand + " --cluster C --host H -- AGENT-COMMAND...",
		Short:  "Keep one lab host's agent running (started by weft up)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.cluster == "" {
				return errors.New("--cluster is required")
			}
			keepLogBounded(cmd.Context(), g)
			return lab.RunSupervisor(cmd.Context(), lab.SupervisorConfig{
				Cluster: g.cluster, Host: host, StateRoot: g.stateRoot, Argv: args,
				Log: slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
			})
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "host name")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}
