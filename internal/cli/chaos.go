package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/chaos"
	"github.com/weft-dev/weft/internal/chaos/native"
	"github.com/weft-dev/weft/internal/chaos/report"
	"github.com/weft-dev/weft/internal/fault"
	"github.com/weft-dev/weft/internal/prio"
	"github.com/weft-dev/weft/internal/spec"
)

func newChaosCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Run Chaos Toolkit experiments against a cluster with weft's native faults",
	}
	cmd.AddCommand(newChaosRunCmd(g), newChaosValidateCmd(g))
	return cmd
}

var chaosChecks = map[string]chaos.ProviderCheck{"weft": native.Check}

// loadExperiment reads and checks an experiment; problems exit 2.
func loadExperiment(g *globals, path string) (*chaos.Experiment, error) {
	e, err := chaos.LoadFile(path, chaosChecks)
	if err != nil {
		var ps chaos.Problems
		if errors.As(err, &ps) {
			fmt.Fprintf(g.stderr, "%s: %d problem(s), nothing was run:\n", path, len(ps))
			for _, p := range ps {
				fmt.Fprintf(g.stderr, "  %s\n", p)
			}
			return nil, &exitError{code: exitBadInput}
		}
		return nil, &exitError{code: exitBadInput, err: err}
	}
	return e, nil
}

func newChaosValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate EXPERIMENT",
		Short: "Check an experiment file without running it; exit 2 and every problem when it is wrong",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := loadExperiment(g, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: experiment %q is valid (%d hypothesis probes, %d method activities, %d rollbacks)\n",
				args[0], e.Title, hypothesisLen(e), len(e.Method), len(e.Rollbacks))
			return nil
		},
	}
}

func hypothesisLen(e *chaos.Experiment) int {
	if e.Hypothesis == nil {
		return 0
	}
	return len(e.Hypothesis.Probes)
}

func usesWeft(e *chaos.Experiment) bool {
	var all []*chaos.Activity
	all = append(all, e.Method...)
	all = append(all, e.Rollbacks...)
	if e.Hypothesis != nil {
		all = append(all, e.Hypothesis.Probes...)
	}
	for _, a := range all {
		if a.ProviderType() == "weft" {
			return true
		}
	}
	return false
}

func newChaosRunCmd(g *globals) *cobra.Command {
	var (
		journalPath, reportDir, rollback, hypo, load string
		vars                                         []string
		freq                                         float64
		failFast                                     bool
	)
	cmd := &cobra.Command{
		Use:   "run EXPERIMENT",
		Short: "Run an experiment: steady state, method, steady state, rollbacks; exit 0 when the steady state held and nothing failed, 1 otherwise, 2 for a bad file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := loadExperiment(g, args[0])
			if err != nil {
				return err
			}
			var bad []string
			if !slices.Contains(chaos.RollbackStrategies, rollback) {
				bad = append(bad, fmt.Sprintf("--rollback-strategy %q: use one of %s", rollback, strings.Join(chaos.RollbackStrategies, ", ")))
			}
			if !slices.Contains(chaos.HypothesisStrategies, hypo) {
				bad = append(bad, fmt.Sprintf("--hypothesis-strategy %q: use one of %s", hypo, strings.Join(chaos.HypothesisStrategies, ", ")))
			}
			overrides := map[string]string{}
			for _, v := range vars {
				k, val, ok := strings.Cut(v, "=")
				if !ok || k == "" {
					bad = append(bad, fmt.Sprintf("--var %q: write --var name=value", v))
					continue
				}
				overrides[k] = val
			}
			if load != "" {
				l, err := parseLoadFlag(load)
				if err != nil {
					bad = append(bad, err.Error())
				}
				e.Load = l
			}
			values, err := chaos.ResolveValues(e, overrides, nil)
			if err != nil {
				bad = append(bad, err.Error())
			}
			if len(bad) > 0 {
				fmt.Fprintf(g.stderr, "%d problem(s), nothing was run:\n  %s\n", len(bad), strings.Join(bad, "\n  "))
				return &exitError{code: exitBadInput}
			}

			runner := &chaos.Runner{
				Values: values, RollbackStrategy: rollback, HypothesisStrategy: hypo,
				HypothesisFrequency: time.Duration(freq * float64(time.Second)), FailFast: failFast, Out: g.stdout,
				Providers: map[string]chaos.Provider{},
			}
			var prov *native.Provider
			var c *spec.Cluster
			if usesWeft(e) || fileExists(g.file) {
				if c, err = g.loadFile(); err != nil {
					return err
				}
				runner.Providers["http"] = chaos.HTTPProvider{Dial: native.RootDialGuard(c)}
			}
			if usesWeft(e) {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("finding the weft binary: %w", err)
				}
				prov = &native.Provider{Cluster: native.Cluster{Spec: c, StateRoot: g.stateRoot}, Exe: exe, Out: g.stdout}
				defer prov.Close()
				runner.Providers["weft"] = prov
				runner.AfterMethod = prov.WaitFaults
				runner.Cleanup = prov.EndAll
			}

			ctx := cmd.Context()
			var gen *report.Load
			if e.Load != nil {
				gen = &report.Load{URL: e.Load.URL, Rate: e.Load.Rate}
				loadCtx, stopLoad := context.WithCancel(context.WithoutCancel(ctx))
				done := make(chan struct{})
				go func() { gen.Run(loadCtx); close(done) }()
				defer func() { stopLoad(); <-done }()
				fmt.Fprintf(g.stdout, "load: %d requests/s to %s for the whole experiment\n", e.Load.Rate, e.Load.URL)
			}
			j := runner.Run(ctx, e)
			var windows []native.Window
			if prov != nil {
				windows = prov.Windows()
			}

			if journalPath == "" {
				journalPath = "journal.json"
			}
			if err := writeJournal(journalPath, j); err != nil {
				return err
			}
			if reportDir != "" {
				var samples []report.Second
				var origin time.Time
				if gen != nil {
					gen.Stop()
					samples, origin = gen.Seconds(), gen.Start()
				}
				files, err := report.Write(reportDir, e.Title, j, samples, toReportWindows(windows), origin, gen != nil)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "report: %s\n", strings.Join(files, ", "))
			}
			fmt.Fprintf(g.stdout, "journal: %s\n", journalPath)
			fmt.Fprintln(g.stdout, j.Weft.Verdict)
			if !j.Passed() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&journalPath, "journal", "", "where to write the journal (default ./journal.json, as Chaos Toolkit)")
	f.StringVar(&reportDir, "report", "", "write a report here: timeline.png, summary.txt, journal.json")
	f.StringArrayVar(&vars, "var", nil, "override a configuration value: --var name=value (repeatable)")
	f.StringVar(&rollback, "rollback-strategy", chaos.RollbackDefault, "default|always|never|deviated (default and always: on normal end, failure and Ctrl-C)")
	f.StringVar(&hypo, "hypothesis-strategy", chaos.HypoDefault, "default|before-method-only|after-method-only|during-method|continuously")
	f.Float64Var(&freq, "hypothesis-frequency", 1, "seconds between runs of the hypothesis during the method (during-method, continuously)")
	f.BoolVar(&failFast, "fail-fast", false, "stop the method as soon as the hypothesis deviates during it")
	f.StringVar(&load, "load", "", "steady load for the whole experiment: URL:RATE, e.g. http://127.0.0.1:8080/api/v1/products/:50")
	return cmd
}

func toReportWindows(ws []native.Window) []report.Window {
	out := make([]report.Window, len(ws))
	for i, w := range ws {
		out[i] = report.Window{Label: w.Label, Start: w.Start, End: w.End}
	}
	return out
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func parseLoadFlag(s string) (*chaos.Load, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return nil, fmt.Errorf("--load %q: write URL:RATE", s)
	}
	rate, err := strconv.Atoi(s[i+1:])
	if err != nil || rate <= 0 || rate > 2000 {
		return nil, fmt.Errorf("--load %q: RATE is requests per second, 1 to 2000", s)
	}
	u := s[:i]
	if !strings.HasPrefix(u, "http://127.0.0.1:") && !strings.HasPrefix(u, "http://localhost:") {
		return nil, fmt.Errorf("--load %q: load goes through a port published on 127.0.0.1", s)
	}
	return &chaos.Load{URL: u, Rate: rate}, nil
}

func writeJournal(path string, j *chaos.Journal) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the journal: %w", err)
	}
	if dir := filepath.Dir(path); dir != "" {
		_ = os.MkdirAll(dir, 0o755)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

// Hidden helpers the faults start as processes of their own.

func newFaultDelayCmd() *cobra.Command {
	var nsName, delay, until string
	var queue int
	cmd := &cobra.Command{
		Use:    "fault-delay",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := time.ParseDuration(delay)
			if err != nil {
				return err
			}
			end, err := time.Parse(time.RFC3339Nano, until)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithDeadline(cmd.Context(), end)
			defer cancel()
			return fault.DelayStage(ctx, nsName, uint16(queue), d)
		},
	}
	cmd.Flags().StringVar(&nsName, "netns", "", "namespace")
	cmd.Flags().IntVar(&queue, "queue", 0, "NFQUEUE number")
	cmd.Flags().StringVar(&delay, "delay", "", "delay")
	cmd.Flags().StringVar(&until, "until", "", "end (RFC 3339)")
	return cmd
}

func newFaultBurnCmd() *cobra.Command {
	var until string
	var workers int
	cmd := &cobra.Command{
		Use:    "fault-burn",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			end, err := time.Parse(time.RFC3339Nano, until)
			if err != nil {
				return err
			}
			// Started by the agent: burn at a workload's priority.
			if err := prio.Set(prio.Workload); err != nil {
				return err
			}
			ctx, cancel := context.WithDeadline(cmd.Context(), end)
			defer cancel()
			fault.Burn(ctx, workers)
			return nil
		},
	}
	cmd.Flags().IntVar(&workers, "workers", 1, "spinning threads")
	cmd.Flags().StringVar(&until, "until", "", "end (RFC 3339)")
	return cmd
}
