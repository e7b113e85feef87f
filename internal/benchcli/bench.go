// Package benchcli is the command line of weft's benchmarks, built as its
// own binary (cmd/weft-bench) so that the product, cmd/weft, does not link
// the benchmarks' plotting and load generators; `weft bench` runs it.
package benchcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	gatewaybench "github.com/weft-dev/weft/internal/bench/gateway"
	overlaybench "github.com/weft-dev/weft/internal/bench/overlay"
	"github.com/weft-dev/weft/internal/bench/report"
	reschedulebench "github.com/weft-dev/weft/internal/bench/reschedule"
	upbench "github.com/weft-dev/weft/internal/bench/up"
	"github.com/weft-dev/weft/internal/naming"
)

// globals are the flags every benchmark shares with weft's own.
type globals struct {
	stateRoot string
	weft      string // the weft binary the benchmarks run
	stdout    io.Writer
	stderr    io.Writer
}

// Main runs `weft bench` and returns the process exit status.
func Main(args []string) int { return run(args, os.Stdout, os.Stderr) }

func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	cmd := newBenchCmd(g)
	stateRoot := os.Getenv("WEFT_STATE_ROOT")
	if stateRoot == "" {
		stateRoot = naming.DefaultStateRoot
	}
	cmd.PersistentFlags().StringVar(&g.stateRoot, "state-root", stateRoot, "where weft keeps cluster state on this machine")
	cmd.PersistentFlags().StringVar(&g.weft, "weft", "", "the weft binary the benchmarks run (default: weft next to weft-bench)")
	_ = cmd.PersistentFlags().MarkHidden("state-root")
	// Accepted for `weft bench` run with weft's global flags; unused here.
	var file, cluster string
	var verbose bool
	cmd.PersistentFlags().StringVarP(&file, "file", "f", "", "unused by the benchmarks (they build their own clusters)")
	cmd.PersistentFlags().StringVar(&cluster, "cluster", "", "unused by the benchmarks (they build their own clusters)")
	cmd.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "unused: the benchmarks always log to stderr")
	for _, f := range []string{"file", "cluster", "verbose"} {
		_ = cmd.PersistentFlags().MarkHidden(f)
	}
	// Under a root named weft, so that usage reads `weft bench ...`.
	root := &cobra.Command{Use: "weft", SilenceUsage: true, SilenceErrors: true}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(cmd)
	root.SetArgs(append([]string{"bench"}, args[1:]...))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		fmt.Fprintf(g.stderr, "weft bench: %v\n", ee.err)
		return ee.code
	}
	fmt.Fprintf(g.stderr, "weft bench: %v\n", err)
	return 1
}

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// benchFlags are shared by every `weft bench` subcommand.
type benchFlags struct {
	results  string
	duration time.Duration
	rounds   int
	hello    string
}

func newBenchCmd(g *globals) *cobra.Command {
	var bf benchFlags
	cmd := &cobra.Command{
		Use:  "bench",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &exitError{code: 2, err: fmt.Errorf("unknown benchmark %q: give one of overlay, up, gateway, failover, reschedule", args[0])}
			}
			return cmd.Help()
		},
		Short: "Measure the overlay, bring-up at scale, the gateway, VIP failover and rescheduling, each against its anchor",
	}
	cmd.PersistentFlags().StringVar(&bf.results, "results", "bench-results", "folder for the CSV, JSON and PNG results")
	cmd.PersistentFlags().DurationVar(&bf.duration, "duration", 10*time.Second, "length of one measurement in a round")
	cmd.PersistentFlags().IntVar(&bf.rounds, "rounds", 3, "alternating A/B rounds")
	cmd.PersistentFlags().StringVar(&bf.hello, "hello", "", "the hello service binary (default: hello next to weft)")

	var streams []int
	overlay := &cobra.Command{
		Use:   "overlay",
		Short: "TCP throughput and latency: overlay vs underlay vs hand-built kernel VXLAN, and the overlay without the host firewall",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), g, bf, func(ctx context.Context, exe, work string, log *slog.Logger) (*report.Report, error) {
				return overlaybench.Run(ctx, overlaybench.Options{
					Duration: bf.duration, Rounds: bf.rounds, Streams: streams, ResultsDir: bf.results,
					Log: log, Weft: exe, WorkDir: work,
				})
			})
		},
	}
	overlay.Flags().IntSliceVar(&streams, "streams", []int{1, 4}, "TCP stream counts")

	var sizes []int
	var perHost, additions int
	var compare bool
	up := &cobra.Command{
		Use:   "up",
		Short: "Bring-up and teardown of generated clusters of growing size, with a plot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), g, bf, func(ctx context.Context, exe, _ string, log *slog.Logger) (*report.Report, error) {
				return upbench.Run(ctx, upbench.Options{
					Sizes: sizes, PerHost: perHost, Additions: additions, ResultsDir: bf.results,
					Weft: exe, Hello: helloPath(bf, exe), StateRoot: g.stateRoot, Log: log,
					Compare: compare, Rounds: bf.rounds,
				})
			})
		},
	}
	up.Flags().IntSliceVar(&sizes, "sizes", []int{3, 10, 25, 50}, "host counts")
	up.Flags().IntVar(&perHost, "per-host", 4, "containers per host")
	up.Flags().IntVar(&additions, "additions", 10, "new containers timed per size")
	up.Flags().BoolVar(&compare, "compare", false, "also measure each size with the host firewall off and with user namespaces off, alternating in --rounds rounds, and report the ratios")

	var conns []int
	gw := &cobra.Command{
		Use:   "gateway",
		Short: "Requests/s and latency through the weft gateway vs nginx on the same route",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), g, bf, func(ctx context.Context, exe, work string, log *slog.Logger) (*report.Report, error) {
				return gatewaybench.Run(ctx, gatewaybench.Options{
					Duration: bf.duration, Rounds: bf.rounds, Connections: conns, ResultsDir: bf.results,
					Log: log, Weft: exe, Hello: helloPath(bf, exe), WorkDir: work,
				})
			})
		},
	}
	gw.Flags().IntSliceVar(&conns, "connections", []int{64}, "concurrent keep-alive connections")

	resched := &cobra.Command{
		Use:   "reschedule",
		Short: "Time until a service is served again after its host crashes, against Swarm's node-down detection",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), g, bf, func(ctx context.Context, exe, work string, log *slog.Logger) (*report.Report, error) {
				return reschedulebench.Run(ctx, reschedulebench.Options{
					Rounds: bf.rounds, ResultsDir: bf.results, Log: log, Weft: exe, Hello: helloPath(bf, exe),
					WorkDir: work, StateRoot: g.stateRoot,
				})
			})
		},
	}

	cmd.AddCommand(overlay, up, gw, newBenchFailoverCmd(g, &bf), resched)
	return cmd
}

func helloPath(bf benchFlags, exe string) string {
	if bf.hello != "" {
		return bf.hello
	}
	return filepath.Join(filepath.Dir(exe), "hello")
}

// runBench runs one benchmark, prints its table and saves its results.
func runBench(ctx context.Context, g *globals, bf benchFlags, run func(ctx context.Context, exe, work string, log *slog.Logger) (*report.Report, error)) error {
	if bf.rounds < 1 {
		return &exitError{code: 2, err: fmt.Errorf("--rounds %d: give at least 1", bf.rounds)}
	}
	if bf.duration <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--duration %s: give a positive duration, e.g. 10s", bf.duration)}
	}
	if os.Geteuid() != 0 {
		return &exitError{code: 1, err: fmt.Errorf("weft bench builds lab namespaces and needs root; run it with sudo")}
	}
	exe, err := weftBinary(g)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	work, err := os.MkdirTemp("", "weft-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := run(ctx, exe, work, log)
	if err != nil {
		return err
	}
	if err := r.WriteTable(g.stdout); err != nil {
		return err
	}
	csvPath, jsonPath, err := r.Save(bf.results)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "results: %s %s", csvPath, jsonPath)
	for _, f := range r.Files {
		fmt.Fprintf(g.stdout, " %s", f)
	}
	fmt.Fprintln(g.stdout)
	return nil
}

// weftBinary is --weft, or weft next to this binary (bin/weft beside
// bin/weft-bench, as make build puts them).
func weftBinary(g *globals) (string, error) {
	if g.weft != "" {
		return g.weft, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding this binary: %w", err)
	}
	exe := filepath.Join(filepath.Dir(self), "weft")
	if _, err := os.Stat(exe); err != nil {
		return "", fmt.Errorf("the benchmarks run weft, and there is no %s: run make build, or give --weft", exe)
	}
	return exe, nil
}
