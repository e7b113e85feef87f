// Package prio sets the CPU priority (nice value) of the whole calling
// process.
//
// The control plane runs before the workloads, as kubelet's
// system-reserved does: an agent (its etcd member, VIP renewals, liveness
// probes) raises its priority at start, so that a host whose containers
// saturate its CPUs still renews its VIP within the fence and answers the
// store in time. Linux keeps a nice value per thread and a new thread
// takes its creator's, so every thread of the process is set; processes it
// forks inherit it, which is why a container's init (and a CPU burner)
// puts itself back to the default before anything of the workload runs.
package prio

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ControlPlane is the nice value of an agent and of what it starts and
// does not reset (its resolver, fault helpers): 9548 against a workload's
// 1024 in the kernel's CFS weights. The host supervisor and the publisher
// are started by weft up and keep its value.
const ControlPlane = -10

// Workload is the default nice value, which containers run at.
const Workload = 0

// Set gives every thread of the calling process the nice value nice.
// Raising priority (a negative value) needs CAP_SYS_NICE.
func Set(nice int) error {
	tids, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("listing this process's threads: %w", err)
	}
	for _, t := range tids {
		status, err := os.ReadFile("/proc/self/task/" + t.Name() + "/status")
		if err != nil {
			continue // the thread has ended
		}
		tid, ok := ownTid(string(status))
		if !ok {
			return fmt.Errorf("no thread id in /proc/self/task/%s/status", t.Name())
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && err != unix.ESRCH {
			return fmt.Errorf("setting thread %d's nice value to %d: %w", tid, nice, err)
		}
	}
	return nil
}

// ownTid is a thread's id in the calling process's own PID namespace (the
// last of the status's NSpid line), which setpriority takes: a container's
// init is in a new PID namespace while /proc is still the host's.
func ownTid(status string) (int, bool) {
	for line := range strings.Lines(status) {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			tid, err := strconv.Atoi(f[len(f)-1])
			return tid, err == nil
		}
	}
	return 0, false
}
