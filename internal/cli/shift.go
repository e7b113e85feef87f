package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/shift"
)

// shiftFlags are `weft shift`'s flags as typed, parsed by settings so that
// every mistake names its flag.
type shiftFlags struct {
	to, steps, interval, maxErrorRate, maxP99 string
	threshold                                 int
	dryRun, detach, asJSON                    bool
}

func (f shiftFlags) settings(route string) (model.ShiftSettings, error) {
	s := model.ShiftSettings{Route: route, To: f.to, Threshold: f.threshold}
	var errs []error
	var err error
	if s.Steps, err = shift.ParseSteps(f.steps); err != nil {
		errs = append(errs, err)
	}
	if s.Interval, err = time.ParseDuration(f.interval); err != nil {
		errs = append(errs, fmt.Errorf("--interval: %q is not a duration; write it like 30s", f.interval))
	}
	if s.MaxErrorRate, err = shift.ParseRate(f.maxErrorRate); err != nil {
		errs = append(errs, err)
	}
	if s.MaxP99, err = time.ParseDuration(f.maxP99); err != nil {
		errs = append(errs, fmt.Errorf("--max-p99: %q is not a duration; write it like 500ms", f.maxP99))
	}
	if len(errs) == 0 {
		errs = append(errs, shift.Check(s))
	}
	return s, errors.Join(errs...)
}

func newShiftCmd(g *globals) *cobra.Command {
	var f shiftFlags
	cmd := &cobra.Command{
		Use:   "shift ROUTE --to SERVICE",
		Short: "Shift a route's traffic to another service step by step, analysing each step and rolling back a bad version",
		Long: "Moves the weight of SERVICE on the route ROUTE (a prefix of the file's routes) through --steps, one --interval each. " +
			"At the end of each interval the leader agent analyses SERVICE's requests on that route from every gateway's own metrics: " +
			"error rate (5xx, including the gateway's 502/504 when SERVICE could not answer) and p99. An interval passes when both are " +
			"within the limits and at least one request reached SERVICE; a passed interval moves to the next step, and after the last " +
			"(100) SERVICE is promoted. When --threshold intervals have failed the route goes back to its weights from before the shift. " +
			"The shift runs in the cluster (the leader agent), not in this command: it survives this command's end and a leader change; " +
			"this command follows it and exits 0 when promoted, 1 when rolled back. `weft shift status` shows the history.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.settings(args[0])
			if err == nil && f.asJSON && !f.dryRun && !f.detach {
				err = errors.New("--json: only with --dry-run or --detach; read a running shift as JSON with weft shift status --json")
			}
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			name, err := g.clusterName()
			if err != nil {
				return err
			}
			client, err := readyAgent(cmd.Context(), g, name)
			if err != nil {
				return err
			}
			ans, err := client.StartShift(cmd.Context(), api.ShiftRequest{Settings: s, DryRun: f.dryRun})
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("shifting %s to %s: %w", s.Route, s.To, err)}
			}
			if f.asJSON && (f.dryRun || f.detach) {
				return printJSON(g.stdout, ans)
			}
			printPlan(g.stdout, ans, f.dryRun)
			if f.dryRun || f.detach {
				return nil
			}
			return followShift(cmd.Context(), g.stdout, client, ans.Shift)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "the service to shift the traffic to (a service of the file, e.g. product-service-v2)")
	fl.StringVar(&f.steps, "steps", "10,25,50,100", "the new service's weight at each step, in percent, ascending, ending at 100")
	fl.StringVar(&f.interval, "interval", "30s", "how long each step is analysed")
	fl.StringVar(&f.maxErrorRate, "max-error-rate", "1%", "an interval fails above this rate of 5xx answers of the new service")
	fl.StringVar(&f.maxP99, "max-p99", "500ms", "an interval fails when the new service's p99 is above this")
	fl.IntVar(&f.threshold, "threshold", 2, "failed intervals that roll the shift back")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan (steps, weights, times, limits) and change nothing")
	fl.BoolVar(&f.detach, "detach", false, "start the shift and return; follow it with weft shift status")
	fl.BoolVar(&f.asJSON, "json", false, "with --dry-run or --detach: print the plan as JSON")
	cmd.AddCommand(newShiftStatusCmd(g))
	return cmd
}

func newShiftStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [ROUTE]",
		Short: "Show each route's last traffic shift: step, weights, every interval's figures and the decisions",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := g.clusterName()
			if err != nil {
				return err
			}
			client, err := readyAgent(cmd.Context(), g, name)
			if err != nil {
				return err
			}
			ans, err := client.Shifts(cmd.Context())
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("reading the shifts: %w", err)}
			}
			if len(args) == 1 {
				sh, ok := ans.Shifts[args[0]]
				if !ok {
					return &exitError{code: 1, err: fmt.Errorf("route %s has had no shift; routes with one: %v", args[0], slices.Sorted(maps.Keys(ans.Shifts)))}
				}
				ans.Shifts = map[string]model.Shift{args[0]: sh}
			}
			if asJSON {
				return printJSON(g.stdout, ans)
			}
			if len(ans.Shifts) == 0 {
				fmt.Fprintln(g.stdout, "no traffic shift yet")
			}
			for _, route := range slices.Sorted(maps.Keys(ans.Shifts)) {
				printShift(g.stdout, ans.Shifts[route], ans.Weights[route])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the shifts and live weights as JSON")
	return cmd
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func limits(s model.ShiftSettings) string {
	return fmt.Sprintf("error rate <= %s, p99 <= %s, interval %s, rollback after %d failed interval(s)",
		shift.Percent(s.MaxErrorRate), s.MaxP99, s.Interval, s.Threshold)
}

func printPlan(w io.Writer, ans api.ShiftAnswer, dryRun bool) {
	s := ans.Shift
	verb := "shifting"
	if dryRun {
		verb = "dry run: would shift"
	}
	fmt.Fprintf(w, "%s %s to %s (now %s)\n", verb, s.Route, s.To, shift.FormatWeights(s.From))
	fmt.Fprintf(w, "limits: %s\n", limits(s.ShiftSettings))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tWEIGHT\tFROM\tUNTIL\tWEIGHTS")
	for _, p := range ans.Plan {
		fmt.Fprintf(tw, "%d\t%d%%\t+%s\t+%s\t%s\n", p.Step, p.Percent, p.From.Sub(s.Requested).Round(time.Second),
			p.Until.Sub(s.Requested).Round(time.Second), shift.FormatWeights(p.Weights))
	}
	tw.Flush()
	fmt.Fprintf(w, "promotion after +%s if every interval passes; a bad version is rolled back within %s (threshold x interval) of its step\n",
		time.Duration(len(ans.Plan))*s.Interval, ans.RollbackWithin)
	if dryRun {
		fmt.Fprintln(w, "nothing changed")
	}
}

// followShift prints the shift's intervals and events as the leader
// records them, until it ends.
func followShift(ctx context.Context, w io.Writer, client *api.Client, started model.Shift) error {
	seenEvents, seenIntervals := 0, 0
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(w, "stopped following; the shift goes on in the cluster: weft shift status %s\n", started.Route)
			return ctx.Err()
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ans, err := client.Shifts(cctx)
		cancel()
		if err != nil {
			continue // the agent's store may be changing leader; the shift is in the store
		}
		sh, ok := ans.Shifts[started.Route]
		if !ok || sh.ID != started.ID {
			continue
		}
		for ; seenIntervals < len(sh.Intervals); seenIntervals++ {
			iv := sh.Intervals[seenIntervals]
			fmt.Fprintf(w, "  interval at step %d: %s\n", iv.Step+1, intervalLine(iv))
		}
		for ; seenEvents < len(sh.Events); seenEvents++ {
			ev := sh.Events[seenEvents]
			fmt.Fprintf(w, "%s %s\n", ev.At.Local().Format("15:04:05"), ev.Message)
		}
		switch sh.State {
		case model.ShiftPromoted:
			return nil
		case model.ShiftRolledBack:
			return &exitError{code: 1, err: errors.New(sh.Message)}
		}
	}
}

func intervalLine(iv model.Interval) string {
	verdict := "FAIL"
	if iv.Pass {
		verdict = "pass"
	}
	t := iv.Total
	return fmt.Sprintf("%s: %d requests, %d errors (%s), p99 %s: %s", verdict, t.Requests, t.Errors, shift.Percent(t.ErrorRate),
		t.P99.Round(100*time.Microsecond), iv.Reason)
}

func printShift(w io.Writer, sh model.Shift, live model.RouteWeights) {
	fmt.Fprintf(w, "route %s -> %s: %s", sh.Route, sh.To, sh.State)
	if !model.ShiftDone(sh.State) && sh.State != model.ShiftPending {
		fmt.Fprintf(w, " at step %d/%d (%d%%)", sh.Step+1, len(sh.Steps), sh.Steps[min(sh.Step, len(sh.Steps)-1)])
	}
	fmt.Fprintf(w, ", %d failed interval(s), rollback at %d (shift %s, led by %s)\n", sh.Failed, sh.Threshold, sh.ID, sh.Leader)
	fmt.Fprintf(w, "limits: %s\n", limits(sh.ShiftSettings))
	fmt.Fprintf(w, "weights before: %s\n", shift.FormatWeights(sh.From))
	if live.Route != "" {
		fmt.Fprintf(w, "weights now:    %s (live, by %s)\n", shift.FormatWeights(live.Backends), live.By)
	} else {
		fmt.Fprintf(w, "weights now:    the file's\n")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tWEIGHTS\tSTART\tEND\tGATEWAY\tREQUESTS\tERRORS\tERROR RATE\tP99\tRESULT")
	row := func(iv model.Interval, f model.Figures, first bool) {
		step, weights, start, end, result := "", "", "", "", f.Note
		if first {
			step, weights = fmt.Sprint(iv.Step+1), shift.FormatWeights(iv.Weights)
			start, end = iv.Start.Local().Format("15:04:05"), iv.End.Local().Format("15:04:05")
			result = "FAIL: " + iv.Reason
			if iv.Pass {
				result = "pass"
			}
		}
		gw := f.Gateway
		if gw == "" {
			gw = "total"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", step, weights, start, end, gw, f.Requests, f.Errors,
			shift.Percent(f.ErrorRate), f.P99.Round(100*time.Microsecond), result)
	}
	for _, iv := range sh.Intervals {
		row(iv, iv.Total, true)
		for _, f := range iv.Gateways {
			row(iv, f, false)
		}
	}
	if cur := sh.Current; cur != nil {
		fmt.Fprintf(tw, "%d\t%s\t%s\t(running)\t\t\t\t\t\t\n", cur.Step+1, shift.FormatWeights(cur.Weights), cur.Start.Local().Format("15:04:05"))
	}
	tw.Flush()
	for _, ev := range sh.Events {
		fmt.Fprintf(w, "  %s %s\n", ev.At.Local().Format("15:04:05"), ev.Message)
	}
	if sh.Message != "" {
		fmt.Fprintf(w, "%s\n", strings.TrimSpace(sh.Message))
	}
	fmt.Fprintln(w)
}
