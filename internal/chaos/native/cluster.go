package native

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/spec"
)

// Cluster is what the provider knows of the cluster it acts on.
type Cluster struct {
	Spec      *spec.Cluster
	StateRoot string
}

// Status asks the first agent that answers (unix sockets, no lab address).
func (c Cluster) Status(ctx context.Context) (api.Status, error) {
	socks, _ := filepath.Glob(filepath.Join(naming.StateDir(c.StateRoot, c.Spec.Name), "hosts", "*", "agent.sock"))
	sort.Strings(socks)
	var errs []error
	for _, s := range socks {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := api.NewClient(s).Status(cctx)
		cancel()
		if err == nil {
			return st, nil
		}
		errs = append(errs, err)
	}
	if len(socks) == 0 {
		return api.Status{}, fmt.Errorf("cluster %s does not run on this machine (weft up)", c.Spec.Name)
	}
	return api.Status{}, fmt.Errorf("no agent of cluster %s answers: %w", c.Spec.Name, errors.Join(errs...))
}

// DialIn opens a TCP connection from inside the named lab namespace.
func DialIn(ctx context.Context, nsName, addr string) (net.Conn, error) {
	var conn net.Conn
	err := nsthread.DoNamed(nsName, func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
}

// RootDialGuard is the dialer of http providers that run in the root
// namespace: it refuses the cluster's underlay and overlay addresses, which
// are only reachable from inside the lab (weft never routes them from the
// root namespace), so an experiment cannot send lab traffic out of the
// machine's default route.
func RootDialGuard(c *spec.Cluster) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if c.Network.CIDR.Contains(ip) || c.Overlay.CIDR.Contains(ip) {
				return nil, fmt.Errorf("%s is a lab address: ask from inside the lab with type: weft, func: http, host: <host>", ip)
			}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(ips[0].String(), portOf(addr)))
	}
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// targets resolves names (hosts, services, containers) against a status.
type targets struct {
	spec   *spec.Cluster
	status api.Status
}

type target struct {
	host       string                  // a host name, when the name is a host
	containers []model.ContainerStatus // when the name is a service or container
}

func (t targets) resolve(name string) (target, error) {
	if _, ok := t.spec.HostByName(name); ok {
		return target{host: name}, nil
	}
	var cs []model.ContainerStatus
	for _, c := range t.status.Containers {
		if c.Container == name || c.Service == name {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return target{}, fmt.Errorf("%q is not a host, service or container of cluster %s", name, t.spec.Name)
	}
	return target{containers: cs}, nil
}

func (t targets) hostAddr(host string) netip.Addr {
	h, _ := t.spec.HostByName(host)
	return h.Address
}

// containerAddrs are the overlay addresses a list of names stands for
// (every container of a host when a name is a host).
func (t targets) containerAddrs(names []string) ([]netip.Addr, error) {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, n := range names {
		tg, err := t.resolve(n)
		if err != nil {
			return nil, err
		}
		cs := tg.containers
		if tg.host != "" {
			for _, c := range t.status.Containers {
				if c.Host == tg.host {
					cs = append(cs, c)
				}
			}
		}
		for _, c := range cs {
			if c.IP.IsValid() && !seen[c.IP] {
				seen[c.IP] = true
				out = append(out, c.IP)
			}
		}
	}
	return sortAddrs(out), nil
}

// hostAddrs are the underlay addresses of the hosts a list of names stands
// for (a container's or service's hosts).
func (t targets) hostAddrs(names []string) ([]netip.Addr, []string, error) {
	seen := map[string]bool{}
	var addrs []netip.Addr
	var hosts []string
	for _, n := range names {
		tg, err := t.resolve(n)
		if err != nil {
			return nil, nil, err
		}
		hs := []string{tg.host}
		if tg.host == "" {
			hs = nil
			for _, c := range tg.containers {
				hs = append(hs, c.Host)
			}
		}
		for _, h := range hs {
			if !seen[h] {
				seen[h] = true
				hosts = append(hosts, h)
				addrs = append(addrs, t.hostAddr(h))
			}
		}
	}
	return sortAddrs(addrs), hosts, nil
}
