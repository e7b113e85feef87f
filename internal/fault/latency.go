package fault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// MechanismNFQueue and MechanismNetem name how latency was added; the
// journal records which.
const (
	MechanismNFQueue = "nfqueue user-space delay stage"
	MechanismNetem   = "tc netem"
)

// NetemHandle is the major handle of weft's netem qdiscs (0xf418:).
const NetemHandle = 0xf418

// applyLatency adds the delay with the kernel's netem where it exists and
// the fault has no `to` (netem delays a whole link); otherwise, as on this
// kernel which has no netem, through the user-space delay stage. The
// record's Mechanism says which was used.
func applyLatency(ctx context.Context, env Env, r *Record) error {
	why := "the fault names peers; netem would delay the whole link"
	if r.Mechanism == MechanismNetem || (r.Mechanism == "" && netemFits(r)) {
		err := applyNetem(ctx, r)
		if err == nil {
			r.Mechanism = MechanismNetem
			return nil
		}
		if r.Mechanism == MechanismNetem {
			return err
		}
		why = "this kernel has no netem" // the qdisc was refused
	}
	if !strings.HasPrefix(r.Mechanism, MechanismNFQueue) {
		r.Mechanism = MechanismNFQueue + " (" + why + ")"
	}
	if err := applyNFT(ctx, r); err != nil {
		return err
	}
	return startDelayStages(ctx, env, r)
}

func netemFits(r *Record) bool {
	for _, p := range r.Parts {
		if len(p.Peers) > 0 || p.Dev == "" {
			return false
		}
	}
	return len(r.Parts) > 0
}

func applyNetem(ctx context.Context, r *Record) error {
	return replaceRootQdiscs(ctx, r, "netem", func(link netlink.Link) netlink.Qdisc {
		return netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(NetemHandle, 0), Parent: netlink.HANDLE_ROOT},
			netlink.NetemQdiscAttrs{Latency: uint32(r.Delay / time.Microsecond), Limit: 10000})
	})
}

func removeLatency(ctx context.Context, r *Record) error {
	var errs []error
	for _, p := range r.Parts {
		if p.Dev != "" {
			errs = append(errs, removeQdisc(p.Netns, p.Dev, NetemHandle))
		}
	}
	errs = append(errs, stopHelpers(r), removeNFT(ctx, r))
	return errors.Join(errs...)
}

// startDelayStages starts one delay stage process per part (`weft
// fault-delay`), in its own session so it survives the runner, ending by
// itself when the fault expires. A part whose stage already runs is left
// alone.
func startDelayStages(ctx context.Context, env Env, r *Record) error {
	for i := range r.Parts {
		p := &r.Parts[i]
		if HelperAlive(*p) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		exe := env.Exe
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return fmt.Errorf("finding the weft binary: %w", err)
			}
		}
		args := []string{"fault-delay", "--netns", p.Netns, "--queue", strconv.Itoa(int(p.Queue)),
			"--delay", r.Delay.String(), "--until", r.Expires.UTC().Format(time.RFC3339Nano)}
		cmd := exec.Command(exe, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		cmd.Dir = "/"
		if env.StateRoot != "" {
			dir := filepath.Join(env.StateRoot, r.Cluster, "faults")
			if err := os.MkdirAll(dir, 0o755); err == nil {
				if f, err := os.OpenFile(filepath.Join(dir, r.ID+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
					cmd.Stdout, cmd.Stderr = f, f
					defer f.Close()
				}
			}
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting the delay stage in %s: %w", p.Netns, err)
		}
		go func() { _ = cmd.Wait() }()
		p.Pid = cmd.Process.Pid
		start, err := procStart(p.Pid)
		if err != nil {
			return fmt.Errorf("the delay stage in %s exited at once (see %s/%s/faults/%s.log): %w", p.Netns, env.StateRoot, r.Cluster, r.ID, err)
		}
		p.PidStart = start
	}
	return nil
}
