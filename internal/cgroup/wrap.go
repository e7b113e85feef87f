package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
)

// WrapArgv returns argv behind a shell that first moves itself into rel (in
// the pids hierarchy, and the freezer one when mounted) and then execs
// argv: the program and every child it forks belong to rel from their first
// instruction, which Join after a start cannot promise for a program that
// forks at once (keepalived).
func WrapArgv(rel string, argv []string) ([]string, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("wrapping a command into cgroup %s: empty command", rel)
	}
	procs := []string{filepath.Join(dir(rel), "cgroup.procs")}
	if haveFreezer() {
		procs = append(procs, filepath.Join(freezerDir(rel), "cgroup.procs"))
	} else {
		procs = append(procs, procs[0])
	}
	for _, p := range procs {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("creating cgroup %s: %w", filepath.Dir(p), err)
		}
	}
	const script = `echo $$ > "$1" && echo $$ > "$2" && shift 2 && exec "$@"`
	return append([]string{"/bin/sh", "-c", script, "sh", procs[0], procs[1]}, argv...), nil
}
