package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/cluster"
	"github.com/weft-dev/weft/internal/spec"
)

func newUpCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	var asJSON bool
	var ssh sshFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create the cluster in the file, or converge it to the file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.loadFile()
			if err != nil {
				return err
			}
			if g.cluster != "" && g.cluster != c.Name {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--cluster %s: %s names the cluster %s, and up creates the cluster its file names; change name: in the file, or drop --cluster", g.cluster, g.file, c.Name)}
			}
			res, err := up(cmd.Context(), g, c, ssh, timeout, !asJSON)
			if asJSON {
				_ = json.NewEncoder(g.stdout).Encode(res)
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "how long to wait for every service to become healthy")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	ssh.register(cmd, true)
	return cmd
}

// up runs cluster.Up with the file's provider, printing its progress unless
// progress is off (--json).
func up(ctx context.Context, g *globals, c *spec.Cluster, ssh sshFlags, timeout time.Duration, progress bool) (cluster.UpResult, error) {
	say := func(format string, args ...any) {
		if progress {
			fmt.Fprintf(g.stdout, format+"\n", args...)
		}
	}
	if os.Geteuid() != 0 {
		return cluster.UpResult{Cluster: c.Name}, &exitError{code: 1, err: errors.New("weft up builds network namespaces and needs root; run it with sudo")}
	}
	p, err := cluster.NewProvider(c.Provider, ssh.options(g, say))
	if err != nil {
		return cluster.UpResult{Cluster: c.Name}, err
	}
	res, err := cluster.Up(ctx, cluster.Env{StateRoot: g.stateRoot, Provider: p, Say: say}, c, timeout)
	if err != nil {
		return res, err
	}
	say("next: weft status -f %s | weft ps | weft exec SERVICE -- CMD | weft down", g.file)
	return res, nil
}

func newDownCmd(g *globals) *cobra.Command {
	var keepVolumes bool
	var ssh sshFlags
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove everything of the cluster: namespaces, links, processes, mounts, state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := g.clusterName()
			if err != nil {
				return err
			}
			// --cluster names no provider: the one this machine recorded
			// for the cluster (ssh keeps the record of its servers).
			p, err := cluster.ProviderOf(name, ssh.options(g, nil))
			if err != nil {
				return err
			}
			rm, err := cluster.Down(cmd.Context(), cluster.Env{StateRoot: g.stateRoot, Provider: p}, name, keepVolumes)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "cluster %s removed: %d namespaces, %d processes\n", name, len(rm.Namespaces), rm.Processes)
			return nil
		},
	}
	cmd.Flags().BoolVar(&keepVolumes, "keep-volumes", false, "keep the volume directories")
	ssh.register(cmd, false)
	return cmd
}

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check a cluster file without touching anything",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			c, err := g.loadFile()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: cluster %s is valid: %d hosts, %d services, %d containers\n", g.file, c.Name, len(c.Hosts), len(c.Services), c.ContainerCount())
			return nil
		},
	}
}
