// Package fault owns weft's native faults: what each does to the kernel or
// the processes of a lab cluster, applied and removed idempotently.
//
// A fault is a Record: its kind, its parameters, where it lives (Parts,
// resolved from the experiment's targets before it is applied) and when it
// expires. The record is written to the store before Apply, and anybody
// holding it can Remove the fault: the runner on rollback, or any agent once
// it expired (a runner killed with -9 leaves nothing behind). Removal needs
// nothing but the record.
//
// One file per kind; the nftables, tc and process parts each have one
// helper. Network faults act only inside lab namespaces.
package fault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weft-dev/weft/internal/lab"
)

// Kinds of fault.
const (
	KillContainer = "kill-container"
	KillService   = "kill-service"
	KillAgent     = "kill-agent"
	CrashHost     = "crash-host"
	CutHost       = "cut-host"
	Partition     = "partition"
	Loss          = "loss"
	Bandwidth     = "bandwidth"
	Latency       = "latency"
	FillDisk      = "fill-disk"
	BurnCPU       = "burn-cpu"
)

// Kinds lists every kind.
var Kinds = []string{KillContainer, KillService, KillAgent, CrashHost, CutHost, Partition, Loss, Bandwidth, Latency, FillDisk, BurnCPU}

// Record is one fault. Everything needed to remove it is in it.
type Record struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Cluster   string    `json:"cluster"`
	Target    string    `json:"target"`    // as the experiment named it
	Mechanism string    `json:"mechanism"` // how it is done, e.g. "nftables numgen"
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	Parts     []Part    `json:"parts"`

	Percent    int           `json:"percent,omitempty"`     // loss
	RateBytes  uint64        `json:"rate_bytes,omitempty"`  // bandwidth, bytes per second
	BurstBytes uint32        `json:"burst_bytes,omitempty"` // bandwidth
	Delay      time.Duration `json:"delay,omitempty"`       // latency
	Bytes      int64         `json:"bytes,omitempty"`       // fill-disk
	Workers    int           `json:"workers,omitempty"`     // burn-cpu
}

// Part is one place a fault lives.
type Part struct {
	Netns     string       `json:"netns,omitempty"`     // namespace of nftables rules or a qdisc
	Dev       string       `json:"dev,omitempty"`       // link of a qdisc
	Peers     []netip.Addr `json:"peers,omitempty"`     // addresses the rules match (none: all but loopback)
	Inbound   bool         `json:"inbound,omitempty"`   // also match packets from Peers (cuts)
	Host      string       `json:"host,omitempty"`      // lab host (crash, cut-host, kill-agent)
	Container string       `json:"container,omitempty"` // kill, fill, burn
	Pid       int          `json:"pid,omitempty"`       // a helper process weft started (delay stage, burner)
	PidStart  string       `json:"pid_start,omitempty"` // its start time, so a reused pid is never killed
	Path      string       `json:"path,omitempty"`      // a file (fill-disk)
	Queue     uint16       `json:"queue,omitempty"`     // NFQUEUE number (latency)
}

// Env is what applying and removing need from the machine.
type Env struct {
	StateRoot string
	Exe       string // the weft binary (helper processes, restarting an agent)
	Lab       *lab.Lab
	// Pid returns the pid of a container's main process (kill, burn).
	Pid func(ctx context.Context, container string) (int, error)
}

// NewID returns a fresh fault id.
func NewID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Expired reports whether the fault's time is over at now.
func (r *Record) Expired(now time.Time) bool { return !now.Before(r.Expires) }

// Lasting reports whether the kind stays in place until removed (a kill
// is over once done).
func Lasting(kind string) bool {
	return kind != KillContainer && kind != KillService
}

// Apply makes the fault happen. Applying it again changes nothing more.
func Apply(ctx context.Context, env Env, r *Record) error {
	var err error
	switch r.Kind {
	case KillContainer, KillService:
		err = applyKill(ctx, env, r)
	case KillAgent:
		err = applyKillAgent(ctx, env, r)
	case CrashHost:
		err = applyHosts(ctx, env, r, (*lab.Lab).Crash)
	case CutHost:
		err = applyHosts(ctx, env, r, (*lab.Lab).Cut)
	case Partition, Loss:
		err = applyNFT(ctx, r)
	case Latency:
		err = applyLatency(ctx, env, r)
	case Bandwidth:
		err = applyBandwidth(ctx, r)
	case FillDisk:
		err = applyFill(ctx, r)
	case BurnCPU:
		err = applyBurn(ctx, env, r)
	default:
		err = fmt.Errorf("unknown fault kind %q", r.Kind)
	}
	if err != nil {
		return fmt.Errorf("applying fault %s (%s on %s): %w", r.ID, r.Kind, r.Target, err)
	}
	return nil
}

// Remove undoes the fault; removing a fault that is gone is not an error.
func Remove(ctx context.Context, env Env, r *Record) error {
	var err error
	switch r.Kind {
	case KillContainer, KillService:
		// nothing stays: the runtime restarts the process
	case KillAgent:
		err = removeKillAgent(ctx, env, r)
	case CrashHost:
		err = undoHosts(ctx, env, r, (*lab.Lab).Restore)
	case CutHost:
		err = undoHosts(ctx, env, r, (*lab.Lab).Heal)
	case Partition, Loss:
		err = removeNFT(ctx, r)
	case Latency:
		err = removeLatency(ctx, r)
	case Bandwidth:
		err = removeBandwidth(ctx, r)
	case FillDisk:
		err = removeFill(r)
	case BurnCPU:
		err = stopHelpers(r)
	default:
		err = fmt.Errorf("unknown fault kind %q", r.Kind)
	}
	if err != nil {
		return fmt.Errorf("removing fault %s (%s on %s): %w", r.ID, r.Kind, r.Target, err)
	}
	return nil
}

// stopHelpers kills the helper processes weft started for r, when they are
// still the same processes.
func stopHelpers(r *Record) error {
	var errs []error
	for _, p := range r.Parts {
		if p.Pid <= 0 {
			continue
		}
		if start, err := procStart(p.Pid); err != nil || start != p.PidStart {
			continue // gone, or the pid was reused
		}
		// Helpers lead their own session: the group goes too (nsenter's
		// child in a container's PID namespace).
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("stopping helper %d: %w", p.Pid, err))
		}
	}
	return errors.Join(errs...)
}

// procStart is field 22 of /proc/<pid>/stat (start time since boot), or an
// error when the process is gone or a zombie.
func procStart(pid int) (string, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	s := string(raw)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return "", errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 20 {
		return "", errors.New("malformed /proc stat")
	}
	if f[0] == "Z" || f[0] == "X" {
		return "", errors.New("process exited")
	}
	return f[19], nil
}

// HelperAlive reports whether a part's helper process still runs.
func HelperAlive(p Part) bool {
	if p.Pid <= 0 {
		return false
	}
	start, err := procStart(p.Pid)
	return err == nil && start == p.PidStart
}
