// Package firewall owns weft's nftables firewall in a host's network
// namespace: VXLAN only from member hosts, etcd and VIP probes only from the
// hosts that use them, nothing from a container to its host but DNS, no
// container routed out through its host, and every container sending only
// from its own address and MAC. Drops are counted in named counters.
//
// The shape follows Tailscale's wgengine/router: Build is a pure function
// from Config to tables, Plan a pure diff against what the kernel has, and
// Set the one idempotent entry point that applies the plan through a small
// Kernel interface (nft.go is the real one), so the tests of everything but
// the netlink encoding run without root.
package firewall

import (
	"context"
	"fmt"
	"maps"
)

// Kernel is the nftables of one network namespace, as Set needs it.
type Kernel interface {
	// Read returns weft's firewall tables (TableName, families inet and
	// bridge) as they are now; none when there are none.
	Read(ctx context.Context) ([]State, error)
	// Apply makes every change of ops in one transaction.
	Apply(ctx context.Context, ops []Op) error
}

// Firewall is one host's firewall.
type Firewall struct {
	Kernel Kernel
}

// Set makes the kernel's tables match c, and writes nothing when they
// already do. The zero Config removes them.
func (f Firewall) Set(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	have, err := f.Kernel.Read(ctx)
	if err != nil {
		return fmt.Errorf("reading the firewall: %w", err)
	}
	return f.apply(ctx, Plan(Build(c), have))
}

// Init applies c only when the namespace has none of weft's firewall tables
// yet: an agent calls it before its etcd member listens, from the cluster
// file alone, without undoing what an earlier agent set up for running
// containers.
func (f Firewall) Init(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	have, err := f.Kernel.Read(ctx)
	if err != nil {
		return fmt.Errorf("reading the firewall: %w", err)
	}
	if len(have) > 0 {
		return nil
	}
	return f.apply(ctx, Plan(Build(c), nil))
}

func (f Firewall) apply(ctx context.Context, ops []Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.Kernel.Apply(ctx, ops); err != nil {
		return fmt.Errorf("writing the firewall (%v): %w", ops, err)
	}
	return nil
}

// Status is what `weft status` shows of a host's firewall.
type Status struct {
	On      bool             `json:"on"`
	Dropped map[string]Count `json:"dropped,omitempty"` // by counter name (CounterNames)
	Error   string           `json:"error,omitempty"`   // why it could not be read
}

// Status reads the counters of every table of weft's firewall.
func (f Firewall) Status(ctx context.Context) Status {
	have, err := f.Kernel.Read(ctx)
	if err != nil {
		return Status{Error: err.Error()}
	}
	st := Status{On: len(have) > 0}
	for _, s := range have {
		if st.Dropped == nil {
			st.Dropped = map[string]Count{}
		}
		maps.Copy(st.Dropped, s.Counters)
	}
	return st
}
