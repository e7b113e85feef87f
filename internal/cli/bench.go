package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// benchBinary is the benchmarks' own binary (cmd/weft-bench), beside weft:
// weft itself does not link the benchmarks.
const benchBinary = "weft-bench"

// benchCleanupGrace is how long an interrupted weft-bench may take to remove
// its cluster (its own bound on that is 3 minutes) before it is killed.
const benchCleanupGrace = 4 * time.Minute

// newBenchCmd runs weft-bench with every argument after `bench`.
func newBenchCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:                "bench",
		Short:              "Measure the overlay, bring-up at scale, the gateway, VIP failover and rescheduling, each against its anchor (runs weft-bench)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding this binary: %w", err)
			}
			return runBench(cmd.Context(), g, self, args)
		},
	}
}

// runBench runs the weft-bench beside self (the weft binary) with args,
// telling it which weft to drive and the state root, and exits with its
// status.
func runBench(ctx context.Context, g *globals, self string, args []string) error {
	bin := filepath.Join(filepath.Dir(self), benchBinary)
	if _, err := os.Stat(bin); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("weft bench runs %s, and there is none beside weft: run make build (it builds bin/%s)", bin, benchBinary)}
	}
	run := exec.CommandContext(ctx, bin, append([]string{"--weft", self}, args...)...)
	run.Stdin, run.Stdout, run.Stderr = os.Stdin, g.stdout, g.stderr
	run.Env = append(os.Environ(), "WEFT_STATE_ROOT="+g.stateRoot)
	// Ctrl-C or SIGTERM of weft is passed on as SIGTERM, and weft-bench gets
	// benchCleanupGrace to remove the cluster it measures; killing it at
	// once left whole clusters behind.
	run.Cancel = func() error { return run.Process.Signal(syscall.SIGTERM) }
	run.WaitDelay = benchCleanupGrace
	err := run.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.ExitCode()}
	}
	return err
}
