package lab

import (
	"errors"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/naming"
)

// StopHost is the part of Destroy that concerns one host, for a host that
// is a machine of its own (a server of provider ssh, from `weft
// host-cleanup`): it kills every process of the host's cgroup (supervisor,
// agent, resolver, containers), removes the host's cgroups, and deletes the
// named namespaces of the host's containers. It touches no other host of
// the cluster, even one that shares this machine's /run/netns and cgroups.
func StopHost(cluster, host string) (Removed, error) {
	var removed Removed
	if err := validName("cluster", cluster); err != nil {
		return removed, err
	}
	if err := validName("host", host); err != nil {
		return removed, err
	}
	var problems []error
	removed.Processes, problems = killCgroup(naming.CgroupRelPath(cluster, host), "host "+host)
	// The cluster's own cgroup, once its last host on this machine is gone.
	if err := cgroup.RemoveIfEmpty(naming.CgroupRelPath(cluster)); err != nil {
		problems = append(problems, err)
	}
	var nsErrs []error
	removed.Namespaces, nsErrs = deleteNamespaces(naming.ContainerNetns(cluster, host, ""))
	problems = append(problems, nsErrs...)
	return removed, errors.Join(problems...)
}

// RemoveHostState removes the host's state directory under stateRoot (all
// but its volumes when keepVolumes), detaching mounts below it first.
func RemoveHostState(stateRoot, cluster, host string, keepVolumes bool) (bool, error) {
	if err := validName("cluster", cluster); err != nil {
		return false, err
	}
	if err := validName("host", host); err != nil {
		return false, err
	}
	return removeStateDir(naming.StateDir(stateRoot, cluster), keepVolumes)
}
