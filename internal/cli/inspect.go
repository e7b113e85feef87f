package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/cluster"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/runtime"
)

// agentSockets lists the cluster's agents on this machine: host -> socket.
func agentSockets(g *globals, cluster string) (map[string]string, error) {
	socks, err := api.AgentSockets(g.stateRoot, cluster)
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	return socks, nil
}

// clusterStatus is the status of the cluster named by the flags, from its
// agents on this machine or, for provider ssh, on its servers.
func clusterStatus(ctx context.Context, g *globals) (api.Status, error) {
	name, err := g.clusterName()
	if err != nil {
		return api.Status{}, err
	}
	st, err := cluster.Status(ctx, name, g.ssh.options(g, nil))
	var none *api.NoClusterError
	if errors.As(err, &none) {
		return api.Status{}, &exitError{code: 1, err: err}
	}
	if err != nil {
		return api.Status{}, &exitError{code: 1, err: fmt.Errorf("%w (run `weft up` to restart them)", err)}
	}
	return st, nil
}

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show hosts (subnet, address, netns, agent, etcd member, firewall drops) and containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := clusterStatus(cmd.Context(), g)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(st)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintf(tw, "HOST\tSUBNET\tADDRESS\tOVERLAY\tNETNS\tAGENT\tETCD\tCONTAINERS\n")
			for _, h := range st.Hosts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", h.Name, h.Subnet, h.Address, h.OverlayAddr, h.Netns, h.Agent, h.EtcdMember, h.Containers)
			}
			printFirewalls(tw, st.Hosts)
			fmt.Fprintln(tw)
			printContainers(tw, st.Containers, true)
			printVIPs(tw, st.VIPs)
			printChanges(tw, st.Changes)
			printFaults(tw, st.Faults)
			if err := tw.Flush(); err != nil {
				return err
			}
			printPartial(g, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	g.ssh.register(cmd, false)
	return cmd
}

// printFaults lists the chaos faults in force.
func printFaults(tw *tabwriter.Writer, faults []api.FaultStatus) {
	if len(faults) == 0 {
		return
	}
	fmt.Fprintf(tw, "\nFAULT\tKIND\tTARGET\tMECHANISM\tUNTIL\n")
	for _, f := range faults {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.ID, f.Kind, f.Target, f.Mechanism, f.Expires.Local().Format(time.TimeOnly))
	}
}

// printPartial says when the answer is not the store's and what could not
// be reached.
func printPartial(g *globals, st api.Status) {
	if st.Stale {
		age := "unknown age"
		if st.StaleSeconds > 0 {
			age = time.Duration(st.StaleSeconds*float64(time.Second)).Round(time.Second).String() + " old"
		}
		fmt.Fprintf(g.stdout, "\nSTALE: the store could not be read; hosts and containers are %s's last copy (%s), with each answering agent's own containers as they are now\n", st.Source, age)
	}
	if len(st.Unreachable) > 0 {
		fmt.Fprintln(g.stdout, "\nNOT REACHED:")
		for _, u := range st.Unreachable {
			fmt.Fprintf(g.stdout, "  %s\n", u)
		}
	}
	if len(st.Refused) > 0 {
		fmt.Fprintln(g.stdout, "\nREFUSED (values in the store the agents do not act on):")
		for _, r := range st.Refused {
			fmt.Fprintf(g.stdout, "  %s\n", r)
		}
	}
}

func printContainers(tw *tabwriter.Writer, cs []model.ContainerStatus, wide bool) {
	if wide {
		fmt.Fprintf(tw, "CONTAINER\tSERVICE\tHOST\tADDRESS\tMAC\tNETNS\tPID\tSTATE\tHEALTH\tRESTARTS\tMESSAGE\n")
	} else {
		fmt.Fprintf(tw, "CONTAINER\tHOST\tADDRESS\tPID\tSTATE\tHEALTH\n")
	}
	for _, c := range cs {
		if wide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", c.Container, c.Service, c.Host, c.IP, c.MAC, c.Netns, c.Pid, c.State, c.Health, c.Restarts, c.Message)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", c.Container, c.Host, c.IP, c.Pid, c.State, c.Health)
		}
	}
}

func newPsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := clusterStatus(cmd.Context(), g)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(st.Containers)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
			printContainers(tw, st.Containers, false)
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	g.ssh.register(cmd, false)
	return cmd
}

// findContainer resolves SERVICE, SERVICE/N or a container name.
func findContainer(st api.Status, ref string) (model.ContainerStatus, error) {
	want := ref
	if svc, idx, ok := strings.Cut(ref, "/"); ok {
		n, err := strconv.Atoi(idx)
		if err != nil || n < 1 {
			return model.ContainerStatus{}, &exitError{code: exitBadInput, err: fmt.Errorf("%q: the replica after / must be a number from 1, as in %s/1", ref, svc)}
		}
		want = naming.ContainerName(svc, n)
	}
	var ofService []string
	for _, c := range st.Containers {
		if c.Container == want {
			return c, nil
		}
		if c.Service == ref {
			ofService = append(ofService, c.Container)
		}
	}
	if len(ofService) == 1 {
		for _, c := range st.Containers {
			if c.Container == ofService[0] {
				return c, nil
			}
		}
	}
	if len(ofService) > 1 {
		sort.Strings(ofService)
		return model.ContainerStatus{}, &exitError{code: exitBadInput, err: fmt.Errorf("service %s has %d replicas (%s): say which, as in %s/1", ref, len(ofService), strings.Join(ofService, ", "), ref)}
	}
	var all []string
	for _, c := range st.Containers {
		all = append(all, c.Container)
	}
	sort.Strings(all)
	return model.ContainerStatus{}, &exitError{code: exitBadInput, err: fmt.Errorf("no container or service %q in cluster %s; containers: %s", ref, st.Cluster, strings.Join(all, ", "))}
}

func newLogsCmd(g *globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs SERVICE[/N]",
		Short: "Print a container's output",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := statusOrRecords(cmd.Context(), g)
			if err != nil {
				return err
			}
			c, err := findContainer(st, args[0])
			if err != nil {
				return err
			}
			return containerLogs(cmd.Context(), g, st.Cluster, c, follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "F", false, "keep printing new output")
	g.ssh.register(cmd, false)
	// -f is the cluster file everywhere; accept --follow and -F.
	return cmd
}

func newExecCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec SERVICE[/N] -- CMD [ARGS...]",
		Short: "Run a command inside a container's namespaces; its exit status becomes weft's",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := statusOrRecords(cmd.Context(), g)
			if err != nil {
				return err
			}
			c, err := findContainer(st, args[0])
			if err != nil {
				return err
			}
			argv := args[1:]
			if len(argv) > 0 && argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return &exitError{code: exitBadInput, err: fmt.Errorf("no command given: weft exec %s -- CMD [ARGS...]", args[0])}
			}
			agents, err := g.agents(st.Cluster)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer agents.Close()
			if agents.Remote() {
				// The container's server enters it, with its own weft.
				code, err := agents.Weft(cmd.Context(), c.Host, append([]string{"exec", c.Container, "--"}, argv...), os.Stdin, g.stdout, g.stderr)
				if err != nil {
					return &exitError{code: 1, err: fmt.Errorf("running weft exec on %s: %w", c.Host, err)}
				}
				if code != 0 {
					return &exitError{code: code}
				}
				return nil
			}
			if st.Stale {
				c = withRecordedPid(g, st.Cluster, c)
			}
			if c.Pid <= 0 || c.State != model.StateRunning {
				return &exitError{code: 1, err: fmt.Errorf("container %s is %s, not running: %s", c.Container, c.State, c.Message)}
			}
			x := runtime.ExecCommand(cmd.Context(), c.Pid, argv)
			x.Stdin, x.Stdout, x.Stderr = os.Stdin, g.stdout, g.stderr
			err = x.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return &exitError{code: ee.ExitCode()}
			}
			return err
		},
	}
	cmd.Flags().SetInterspersed(false)
	g.ssh.register(cmd, false)
	return cmd
}
