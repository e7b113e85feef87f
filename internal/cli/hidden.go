package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/agent"
	"github.com/weft-dev/weft/internal/runtime"
)

// newAgentCmd is the per-host agent; `weft up` starts it inside the host.
func newAgentCmd(g *globals) *cobra.Command {
	var cfg agent.Config
	cmd := &cobra.Command{
		Use:    "agent",
		Short:  "Run the agent of one host (started by weft up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the weft binary: %w", err)
			}
			cfg.Exe = exe
			cfg.StateRoot = g.stateRoot
			cfg.Cluster = g.cluster
			if cfg.Cluster == "" {
				return fmt.Errorf("--cluster is required")
			}
			cfg.Log = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			return agent.Run(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.Host, "host", "", "host name")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

// newResolverCmd is a host's DNS resolver; its agent starts it.
func newResolverCmd(g *globals) *cobra.Command {
	var cfg agent.Config
	cmd := &cobra.Command{
		Use:    "resolver",
		Short:  "Serve one host's DNS from the store (started by the agent)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.StateRoot = g.stateRoot
			cfg.Cluster = g.cluster
			if cfg.Cluster == "" {
				return fmt.Errorf("--cluster is required")
			}
			cfg.Log = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			return agent.RunResolver(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.Host, "host", "", "host name")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

// newContainerInitCmd is the first process of every container.
func newContainerInitCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "container-init",
		Hidden:             true,
		DisableFlagParsing: true,
		Run:                func(*cobra.Command, []string) { runtime.ContainerInitMain() },
	}
}
