package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 for user space whatever the kernel's own tick.
const userHZ = 100

// procCPU is the CPU time (user + system, all threads) a process has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	_, cpu, err := parseStat(string(b))
	return cpu, err
}

// groupCPU is the CPU time used by every live process of a process group:
// nginx's master and its workers.
func groupCPU(pgrp int) (time.Duration, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	found := false
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended meanwhile
		}
		group, cpu, err := parseStat(string(b))
		if err != nil || group != pgrp {
			continue
		}
		total += cpu
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no process left in process group %d", pgrp)
	}
	return total, nil
}

// parseStat reads the process group and utime+stime from a /proc/<pid>/stat
// line; the command name in parentheses may hold spaces.
func parseStat(stat string) (pgrp int, cpu time.Duration, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("unreadable /proc stat line %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// After the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("short /proc stat line %q", stat)
	}
	nums := make([]int64, 0, 3)
	for _, k := range []int{2, 11, 12} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("unreadable /proc stat line %q: %w", stat, err)
		}
		nums = append(nums, v)
	}
	return int(nums[0]), time.Duration(nums[1]+nums[2]) * time.Second / userHZ, nil
}
