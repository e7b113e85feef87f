// Package cli is weft's command line: it parses flags, calls internal/cluster
// (up, down, the publisher) and the agents, and renders. It holds no logic of
// its own.
package cli

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

	"github.com/weft-dev/weft/internal/compose"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

// Exit status 2 means the input was refused: nothing was touched.
const exitBadInput = 2

type globals struct {
	file      string
	cluster   string
	stateRoot string
	verbose   bool
	stdout    io.Writer
	stderr    io.Writer
	// ssh is how the reading commands (status, ps) reach the agents of a
	// cluster of provider ssh; up and down have flags of their own.
	ssh sshFlags
}

func (g *globals) logger() *slog.Logger {
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
}

// loadFile loads and validates the cluster file, a weft.yaml or a docker
// compose file (compose.IsCompose says which), turning problems into exit
// status 2 with every problem printed.
func (g *globals) loadFile() (*spec.Cluster, error) {
	c, err := loadClusterFile(g.file)
	if err != nil {
		var probs spec.Problems
		if errors.As(err, &probs) {
			fmt.Fprintf(g.stderr, "%s: %d problem(s), nothing was changed:\n", g.file, len(probs))
			for _, p := range probs {
				fmt.Fprintf(g.stderr, "  %s\n", spec.Problems{p}.Error())
			}
			return nil, &exitError{code: exitBadInput}
		}
		return nil, &exitError{code: exitBadInput, err: err}
	}
	return c, nil
}

// loadFileTimeout bounds reading a cluster file: compose-go reads only local
// files (the compose file, its env_file and .env), so this never waits long.
const loadFileTimeout = 30 * time.Second

// defaultFile is -f when it is not given.
const defaultFile = "weft.yaml"

// defaultClusterFile is the file read without -f: weft.yaml in dir, or,
// when there is none, the compose file docker compose would read there.
func defaultClusterFile(dir string) string {
	file := filepath.Join(dir, defaultFile)
	if _, err := os.Stat(file); err != nil {
		if c, ok := compose.DefaultFile(dir); ok {
			return c
		}
	}
	if dir == "." {
		return defaultFile
	}
	return file
}

// loadClusterFile reads path as a compose file or as a weft.yaml.
func loadClusterFile(path string) (*spec.Cluster, error) {
	data, _ := spec.ReadCapped(path) // a read error is reported by spec.Load
	if !compose.IsCompose(path, data) {
		return spec.Load(path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadFileTimeout)
	defer cancel()
	return compose.Load(ctx, path)
}

// clusterName is --cluster, or the name in the cluster file.
func (g *globals) clusterName() (string, error) {
	if g.cluster != "" {
		return g.cluster, nil
	}
	c, err := g.loadFile()
	if err != nil {
		return "", err
	}
	return c.Name, nil
}

// Main runs the command line and returns the process exit status.
func Main(args []string) int {
	g := &globals{stdout: os.Stdout, stderr: os.Stderr}
	root := &cobra.Command{
		Use:           "weft",
		Short:         "Run microservices across hosts joined by one VXLAN overlay",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	stateRoot := os.Getenv("WEFT_STATE_ROOT")
	if stateRoot == "" {
		stateRoot = naming.DefaultStateRoot
	}
	root.PersistentFlags().StringVarP(&g.file, "file", "f", defaultFile, "cluster file: a weft.yaml or a docker compose file")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		if !cmd.Flags().Changed("file") {
			g.file = defaultClusterFile(".")
		}
	}
	root.PersistentFlags().StringVar(&g.cluster, "cluster", "", "cluster name (instead of reading it from the cluster file)")
	root.PersistentFlags().StringVar(&g.stateRoot, "state-root", stateRoot, "where weft keeps cluster state on this machine")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log details to stderr")
	_ = root.PersistentFlags().MarkHidden("state-root")

	root.AddCommand(
		newUpCmd(g), newScaleCmd(g), newShiftCmd(g), newDownCmd(g), newValidateCmd(g), newStatusCmd(g), newPsCmd(g),
		newLogsCmd(g), newRestartCmd(g), newExecCmd(g), newUICmd(g), newAgentCmd(g), newResolverCmd(g), newContainerInitCmd(), newContainerExecCmd(), newHostSuperviseCmd(g), newGatewayCmd(g), newPublishCmd(g), newBenchCmd(g),
		newChaosCmd(g), newFaultDelayCmd(), newFaultBurnCmd(), newRegistryCmd(g), newImageCmd(g),
	)
	root.AddCommand(newHostStartCmd(g), newHostCleanupCmd(g), newRenderCmd(g))
	root.SetArgs(args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(g.stderr, "weft: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(g.stderr, "weft: %v\n", err)
	return 1
}
