package cgroup

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// The cgroup v1 controllers that enforce a container's limits.
const (
	Memory = "memory"
	CPU    = "cpu"
)

// cfsPeriod is the CFS period (µs) a CPU limit is expressed in: the
// group may run Cores*cfsPeriod µs per period.
const cfsPeriod = 100_000

// Limits are what a cgroup may use; a zero field is no limit.
type Limits struct {
	MemoryBytes int64   // memory.limit_in_bytes (and memsw: no swapping past it)
	CPU         float64 // cores, as cpu.cfs_quota_us / cpu.cfs_period_us
	Pids        int64   // pids.max: processes and threads at once
}

// fileWrite is one value written to a control file of a controller.
type fileWrite struct {
	controller, file, value string
}

// writes lists the control files that enforce l, in the order to write
// them. Pure, for tests.
func (l Limits) writes() []fileWrite {
	var w []fileWrite
	if l.Pids > 0 {
		w = append(w, fileWrite{Controller, "pids.max", strconv.FormatInt(l.Pids, 10)})
	}
	if l.MemoryBytes > 0 {
		v := strconv.FormatInt(l.MemoryBytes, 10)
		// memsw (memory+swap) must stay >= memory: lift it first, set the
		// memory limit, then bring memsw down to it.
		w = append(w,
			fileWrite{Memory, "memory.memsw.limit_in_bytes", "-1"},
			fileWrite{Memory, "memory.limit_in_bytes", v},
			fileWrite{Memory, "memory.memsw.limit_in_bytes", v})
	}
	if l.CPU > 0 {
		quota := max(int64(math.Round(l.CPU*cfsPeriod)), 1000) // the kernel's minimum is 1 ms
		w = append(w,
			fileWrite{CPU, "cpu.cfs_period_us", strconv.Itoa(cfsPeriod)},
			fileWrite{CPU, "cpu.cfs_quota_us", strconv.FormatInt(quota, 10)})
	}
	return w
}

// controllers are the hierarchies a process with limits l joins besides
// pids and freezer.
func (l Limits) controllers() []string {
	var c []string
	if l.MemoryBytes > 0 {
		c = append(c, Memory)
	}
	if l.CPU > 0 {
		c = append(c, CPU)
	}
	return c
}

// JoinLimited is Join with limits: it writes l into rel in every
// controller that enforces one, then moves pid into rel in those
// hierarchies as well as pids and freezer. The limits are in place before
// pid is, so nothing runs unlimited. A limit whose controller is not
// mounted is an error, never ignored.
func JoinLimited(rel string, pid int, l Limits) error {
	for _, w := range l.writes() {
		d := filepath.Join(Root, w.controller, rel)
		if _, err := os.Stat(filepath.Join(Root, w.controller)); err != nil {
			return fmt.Errorf("limiting %s: the cgroup v1 %s controller is not mounted at %s: %w", rel, w.controller, filepath.Join(Root, w.controller), err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating cgroup %s: %w", d, err)
		}
		path := filepath.Join(d, w.file)
		if err := os.WriteFile(path, []byte(w.value), 0o644); err != nil {
			if w.file == "memory.memsw.limit_in_bytes" && errors.Is(err, os.ErrNotExist) {
				continue // no swap accounting on this kernel: memory alone
			}
			return fmt.Errorf("writing %s to %s: %w", w.value, path, err)
		}
	}
	for _, c := range l.controllers() {
		if err := joinIn(c, rel, pid); err != nil {
			return err
		}
	}
	return Join(rel, pid)
}

// limitControllers are removed with a group by KillAll.
var limitControllers = []string{Memory, CPU}

// removeLimitGroups deletes rel in the limit hierarchies (they hold no
// process once the pids group is empty).
func removeLimitGroups(rel string) error {
	for _, c := range limitControllers {
		if err := RemoveFrom(c, rel); err != nil {
			return err
		}
	}
	return nil
}
