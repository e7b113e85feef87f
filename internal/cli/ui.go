package cli

import (
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/ui"
)

// defaultUIListen is where `weft ui` listens without --listen.
const defaultUIListen = "127.0.0.1:8090"

func newUICmd(g *globals) *cobra.Command {
	var (
		listen      string
		allowRemote bool
		interval    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve a live page of the running cluster (hosts, overlay, containers, VIPs, routes, events) with restart and logs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ui.CheckListen(listen, allowRemote); err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			if interval < 50*time.Millisecond || interval > time.Minute {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--interval %s: give a duration from 50ms to 1m, e.g. 300ms", interval)}
			}
			name, err := g.clusterName()
			if err != nil {
				return err
			}
			if _, err := api.AgentSockets(g.stateRoot, name); err != nil {
				return &exitError{code: 1, err: err}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("--listen %s: %w (is another weft ui running? pick another port)", listen, err)}
			}
			srv := ui.New(ui.Config{
				Cluster:     name,
				Source:      ui.Agents{StateRoot: g.stateRoot, Cluster: name},
				Interval:    interval,
				AllowRemote: allowRemote,
				Log:         g.logger(),
			}, ln.Addr().String())
			fmt.Fprintf(g.stdout, "weft ui: cluster %s at http://%s/ (Ctrl-C stops it)\n", name, ln.Addr())
			return srv.Serve(cmd.Context(), ln)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", defaultUIListen, "HOST:PORT to serve the page on; a loopback address unless --allow-remote")
	cmd.Flags().BoolVar(&allowRemote, "allow-remote", false, "allow a --listen address other machines can reach (anyone reaching it can restart containers and read logs)")
	cmd.Flags().DurationVar(&interval, "interval", ui.DefaultInterval, "how often the cluster's status is read; pages get a view only when it changed")
	return cmd
}
