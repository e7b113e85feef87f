package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/agent"
	"github.com/weft-dev/weft/internal/logrotate"
	"github.com/weft-dev/weft/internal/runtime"
)

// newAgentCmd is the per-host agent; `weft up` starts it inside the host.
func newAgentCmd(g *globals) *cobra.Command {
	return newHostDaemonCmd(g, "agent", "Run the agent of one host (started by weft up)", agent.Run)
}

// newResolverCmd is a host's DNS resolver; its agent starts it.
func newResolverCmd(g *globals) *cobra.Command {
	return newHostDaemonCmd(g, "resolver", "Serve one host's DNS from the store (started by the agent)", agent.RunResolver)
}

// newHostDaemonCmd builds a hidden command that runs one of a host's
// long-lived processes with --cluster and --host.
func newHostDaemonCmd(g *globals, use, short string, run func(context.Context, agent.Config) error) *cobra.Command {
	var cfg agent.Config
	cmd := &cobra.Command{
		Use:    use,
		Short:  short,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the weft binary: %w", err)
			}
			if g.cluster == "" {
				return fmt.Errorf("--cluster is required")
			}
			cfg.Exe, cfg.StateRoot, cfg.Cluster = exe, g.stateRoot, g.cluster
			cfg.Log = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			keepLogBounded(cmd.Context(), g)
			return run(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.Host, "host", "", "host name")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

// keepLogBounded rotates a background process's log (its stderr, when
// that is a file, as for the lab's agent, resolver and supervisor) under
// logrotate's defaults, for as long as ctx lives.
func keepLogBounded(ctx context.Context, g *globals) {
	go func() {
		if err := logrotate.KeepStderr(ctx, logrotate.Policy{}, 5*time.Second); err != nil {
			fmt.Fprintf(g.stderr, "weft: keeping the log bounded: %v\n", err)
		}
	}()
}

// newContainerExecCmd enters a container for `weft exec` and exec health
// probes (runtime.ExecCommand).
func newContainerExecCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "container-exec",
		Hidden:             true,
		DisableFlagParsing: true,
		Run:                func(_ *cobra.Command, args []string) { runtime.ContainerExecMain(args) },
	}
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
