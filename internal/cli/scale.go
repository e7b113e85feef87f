package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/agent"
	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/cluster"
)

func newScaleCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "scale SERVICE=N [SERVICE=N...]",
		Short: "Change services' replicas in the running cluster, draining the instances it removes",
		Long: "Sets the replicas of the named services in the applied cluster file (not in your file: " +
			"a later `weft up` applies the file's replicas again) and waits until the cluster shows them, healthy. " +
			"New instances join DNS and the gateways when healthy; removed ones leave them first, then get " +
			"SIGTERM and stop_grace before SIGKILL. `weft status` records the change as made by weft scale.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			want, err := parseScaleArgs(args)
			if err != nil {
				return err
			}
			name, err := g.clusterName()
			if err != nil {
				return err
			}
			client, err := readyAgent(cmd.Context(), g, name)
			if err != nil {
				return err
			}
			ar, err := client.Scale(cmd.Context(), want)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("scaling %s: %w", strings.Join(args, " "), err)}
			}
			fmt.Fprintf(g.stdout, "changes: %d%s\n", ar.Changes.Count(), cluster.DescribeChanges(ar.Changes))
			c, err := client.Spec(cmd.Context())
			if err != nil || c == nil {
				return fmt.Errorf("reading the applied cluster file: %v", err)
			}
			say := func(format string, a ...any) { fmt.Fprintf(g.stdout, format+"\n", a...) }
			ready, err := cluster.WaitConverged(cmd.Context(), client, c, ar, timeout, say)
			if err != nil {
				return err
			}
			say("scaled: %d containers healthy", ready)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "how long to wait for the cluster to show the new replicas, healthy")
	return cmd
}

// parseScaleArgs reads SERVICE=N arguments.
func parseScaleArgs(args []string) (map[string]int, error) {
	want := map[string]int{}
	for _, arg := range args {
		name, count, ok := strings.Cut(arg, "=")
		n, err := strconv.Atoi(count)
		switch {
		case !ok || name == "":
			return nil, &exitError{code: 2, err: fmt.Errorf("%q: write SERVICE=N, e.g. web=5", arg)}
		case err != nil || n < 0:
			return nil, &exitError{code: 2, err: fmt.Errorf("%q: the replicas must be a whole number from 0 up, e.g. %s=5", arg, name)}
		}
		if _, dup := want[name]; dup {
			return nil, &exitError{code: 2, err: fmt.Errorf("%q: service %s is named twice; name it once", arg, name)}
		}
		want[name] = n
	}
	return want, nil
}

// readyAgent returns a client of an agent of the cluster that is connected
// to the store.
func readyAgent(ctx context.Context, g *globals, cluster string) (*api.Client, error) {
	socks, err := agentSockets(g, cluster)
	if err != nil {
		return nil, err
	}
	hosts := make([]string, 0, len(socks))
	for h := range socks {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		cl := api.NewClient(socks[h])
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		hh, err := cl.Health(hctx)
		cancel()
		if err == nil && hh.Phase == agent.PhaseReady {
			return cl, nil
		}
	}
	return nil, &exitError{code: 1, err: fmt.Errorf("no agent of cluster %s is connected to its store (run `weft up` to restart them)", cluster)}
}

// printChanges shows the last scale and rollout of each changed service.
func printChanges(tw *tabwriter.Writer, changes []api.ServiceChange) {
	if len(changes) == 0 {
		return
	}
	fmt.Fprintf(tw, "\nSERVICE\tCHANGE\tBY\tWHEN\tDETAIL\n")
	for _, ch := range changes {
		if s := ch.Scale; s != nil {
			fmt.Fprintf(tw, "%s\tscaled %d -> %d\t%s\t%s\t\n", ch.Service, s.From, s.To, s.By, s.At.Local().Format(time.DateTime))
		}
		if r := ch.Rollout; r != nil {
			detail := fmt.Sprintf("%s -> %s, %d/%d updated", r.From, r.To, r.Updated, r.Replicas)
			if r.Message != "" {
				detail += ": " + r.Message
			}
			fmt.Fprintf(tw, "%s\tupdate %s\tfile\t%s\t%s\n", ch.Service, r.State, r.Started.Local().Format(time.DateTime), detail)
		}
	}
}
