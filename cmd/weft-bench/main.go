// Command weft-bench runs weft's benchmarks (`weft bench` calls it): each
// against its anchor in the same run, with tables, CSV, JSON and plots.
// It is a binary of its own so that weft does not link what only the
// benchmarks need.
package main

import (
	"os"

	"github.com/weft-dev/weft/internal/benchcli"
)

func main() { os.Exit(benchcli.Main(os.Args)) }
