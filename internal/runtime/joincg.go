package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weft-dev/weft/internal/cgroup"
)

// MoveToCgroupsOf moves process proc into the cgroups weft manages
// (execControllers) that process pid is in: its CPU, memory and pids
// accounting and limits, and its freezer, become pid's container's. A CPU
// burner is put there: it needs nothing else of the container (it is the
// weft binary, which an image's root does not hold).
func MoveToCgroupsOf(proc, pid int) error {
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return fmt.Errorf("reading the cgroups of process %d (is it running?): %w", pid, err)
	}
	return moveToCgroups(proc, parseCgroups(string(cg), execControllers))
}

// moveToCgroups moves process proc into each "controller:path".
func moveToCgroups(proc int, cgroups []string) error {
	for _, cg := range cgroups {
		controller, path, _ := strings.Cut(cg, ":")
		procs := filepath.Join(cgroup.Root, controller, path, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(proc)), 0o644); err != nil {
			return fmt.Errorf("joining the container's cgroup %s: %w", procs, err)
		}
	}
	return nil
}
