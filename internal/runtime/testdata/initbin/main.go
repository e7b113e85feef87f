// Command initbin stands in for the weft binary in tests: it runs
// `container-init`, and `supervise <config json> <state root>`, a minimal
// agent that supervises one container and prints its pid, for tests that
// kill the agent.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/runtime"
)

func main() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "container-init":
		runtime.ContainerInitMain()
	case len(os.Args) == 4 && os.Args[1] == "supervise":
		if err := supervise(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "supervise:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: initbin container-init | initbin supervise <config json> <state root>")
		os.Exit(2)
	}
}

func supervise(cfgJSON, stateRoot string) error {
	var cfg runtime.Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return fmt.Errorf("decoding config: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	rt := &runtime.Runtime{StateRoot: stateRoot, Exe: exe}
	return rt.Supervise(context.Background(), cfg, func(e runtime.Event) {
		if e.State == model.StateRunning {
			fmt.Printf("running %d\n", e.Pid)
		}
	})
}
