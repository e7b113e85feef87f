package cli

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/agent"
	"github.com/weft-dev/weft/internal/lab"
	sshprov "github.com/weft-dev/weft/internal/provider/ssh"
)

// newHostStartCmd runs on a server of provider ssh (weft up runs it there
// over ssh where systemd is not PID 1): it makes sure the host's supervisor
// runs in this machine's own network namespace and prints the agent's pid.
func newHostStartCmd(g *globals) *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use:    sshprov.HostStartCommand + " --cluster C --host H -- AGENT-COMMAND...",
		Short:  "Start this server's host supervisor and agent (run by weft up over ssh)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.cluster == "" {
				return errors.New("--cluster is required")
			}
			log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			pid, started, err := lab.StartAgentHere(cmd.Context(), log, g.stateRoot, g.cluster, host, args[0], args[1:])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s %d\n", sshprov.StartedWord(started), pid)
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "host name")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

// newHostCleanupCmd runs on a server of provider ssh (weft down runs it
// there over ssh): it removes everything the host's agent made.
func newHostCleanupCmd(g *globals) *cobra.Command {
	var host string
	var keepVolumes bool
	cmd := &cobra.Command{
		Use:    sshprov.HostCleanupCommand + " --cluster C --host H",
		Short:  "Remove everything weft made on this server (run by weft down over ssh)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.cluster == "" {
				return errors.New("--cluster is required")
			}
			rm, err := agent.CleanHost(cmd.Context(), g.stateRoot, g.cluster, host, keepVolumes)
			fmt.Fprint(g.stdout, sshprov.CleanupReport(rm))
			return err
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "host name")
	cmd.Flags().BoolVar(&keepVolumes, "keep-volumes", false, "keep the volume directories")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}
