package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	gatewaybench "github.com/weft-dev/weft/internal/bench/gateway"
	overlaybench "github.com/weft-dev/weft/internal/bench/overlay"
	"github.com/weft-dev/weft/internal/bench/report"
	reschedulebench "github.com/weft-dev/weft/internal/bench/reschedule"
	upbench "github.com/weft-dev/weft/internal/bench/up"
)

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
		Use:   "bench",
		Short: "Measure the overlay, bring-up at scale, the gateway and rescheduling, each against its baseline",
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
	if os.Geteuid() != 0 {
		return &exitError{code: 1, err: fmt.Errorf("weft bench builds lab namespaces and needs root; run it with sudo")}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
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
