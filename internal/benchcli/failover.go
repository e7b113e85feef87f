package benchcli

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	failoverbench "github.com/weft-dev/weft/internal/bench/failover"
	"github.com/weft-dev/weft/internal/bench/report"
)

func newBenchFailoverCmd(g *globals, bf *benchFlags) *cobra.Command {
	var o failoverbench.Options
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "VIP failover after a host crash: weft's election vs keepalived (unicast VRRP, advert_int 1) moving the same route",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), g, *bf, func(ctx context.Context, exe, work string, log *slog.Logger) (*report.Report, error) {
				o.ResultsDir, o.Weft, o.Hello, o.StateRoot, o.WorkDir, o.Log = bf.results, exe, helloPath(*bf, exe), g.stateRoot, work, log
				return failoverbench.Run(ctx, o)
			})
		},
	}
	cmd.Flags().IntVar(&o.Failovers, "failovers", 10, "crashes of the holder per system")
	cmd.Flags().IntVar(&o.Rate, "rate", 200, "requests/s of the client loop through each VIP")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 200*time.Millisecond, "timeout of each request")
	cmd.Flags().BoolVar(&o.Keepalived, "keepalived", true, "run the keepalived anchor too")
	cmd.Flags().StringVar(&o.Fault, "fault", failoverbench.FaultCrash, "how the holder fails: crash (processes frozen, router leg down) or cut (router leg down, processes alive)")
	return cmd
}
