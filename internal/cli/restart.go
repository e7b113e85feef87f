package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// restartTimeout bounds a restart: the old process has its service's
// stop_grace (default 10s) before SIGKILL.
const restartTimeout = 2 * time.Minute

func newRestartCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restart SERVICE[/N]",
		Short: "Restart a container in place (same host, address and MAC)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := clusterStatus(cmd.Context(), g)
			if err != nil {
				return err
			}
			c, err := findContainer(st, args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), restartTimeout)
			defer cancel()
			agents, err := g.agents(st.Cluster)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer agents.Close()
			res, err := agents.Client(c.Host).Restart(ctx, c.Container)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("restarting %s on %s: %w", c.Container, c.Host, err)}
			}
			fmt.Fprintf(g.stdout, "restarted %s on %s\n", res.Container, res.Host)
			return nil
		},
	}
	g.ssh.register(cmd, false)
	return cmd
}
