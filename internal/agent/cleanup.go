package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/fault"
	"github.com/weft-dev/weft/internal/firewall"
	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/overlay"
	"github.com/weft-dev/weft/internal/provider"
)

// CleanHost removes from this machine everything the host's agent made,
// for a host that outlives its cluster (a server of provider ssh; `weft
// host-cleanup` runs it there, in the server's own network namespace): the
// host's processes, cgroups and container namespaces, the overlay bridge and
// vxlan device, weft's nftables tables (firewall, VIP delivery, faults) and
// the cluster's state under stateRoot (but volumes when keepVolumes). What
// the agent did not make is left alone. It carries on past failures and
// reports them all.
func CleanHost(ctx context.Context, stateRoot, cluster, host string, keepVolumes bool) (provider.Removed, error) {
	var problems []error
	// The file names the bridge and the VNI; without it (never started, or
	// cleaned before) there are no links of weft's to look for.
	boot, bootErr := readBootstrap(stateRoot, cluster, host)
	removed, err := lab.StopHost(cluster, host)
	if err != nil {
		problems = append(problems, err)
	}
	here, err := netns.Get()
	if err != nil {
		return removed, fmt.Errorf("opening this namespace: %w", err)
	}
	defer here.Close()
	if bootErr == nil {
		cfg := overlay.HostConfig{VNI: boot.Overlay.VNI, Bridge: boot.Overlay.Bridge}
		if _, err := overlay.RemoveHost(here, cfg); err != nil {
			problems = append(problems, err)
		}
	}
	if err := (firewall.Firewall{Kernel: firewall.NFT{}}).Set(ctx, firewall.Config{}); err != nil {
		problems = append(problems, fmt.Errorf("removing the firewall: %w", err))
	}
	if err := deleteOwnTables(); err != nil {
		problems = append(problems, err)
	}
	gone, err := lab.RemoveHostState(stateRoot, cluster, host, keepVolumes)
	if err != nil {
		problems = append(problems, err)
	}
	removed.StateDir = gone
	return removed, errors.Join(problems...)
}

// deleteOwnTables deletes the IPv4 nftables tables of VIP delivery and of
// faults in this namespace.
func deleteOwnTables() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("listing nftables tables: %w", err)
	}
	faultPrefix := fault.TableName("")
	deleted := false
	for _, t := range tables {
		if t.Name == VIPTable || strings.HasPrefix(t.Name, faultPrefix) {
			c.DelTable(t)
			deleted = true
		}
	}
	if !deleted {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("deleting weft's nftables tables: %w", err)
	}
	return nil
}
