package native

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/weft-dev/weft/internal/chaos"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/store"
)

// probe runs one native probe. Boolean probes answer true or false (use
// tolerance: true); http answers as the http provider does.
func (p *Provider) probe(ctx context.Context, fn string, args map[string]any) (any, error) {
	switch fn {
	case "service-healthy":
		return p.serviceHealthy(ctx, args)
	case "resolves":
		return p.resolves(ctx, args)
	case "http":
		return p.http(ctx, args)
	case "store-quorum":
		return p.quorum(ctx)
	case "vip-holder":
		return p.vipHolder(ctx, args)
	}
	return nil, fmt.Errorf("unknown weft probe %q", fn)
}

// vipHolder: the name of the host that holds the VIP ("" when none does);
// in active-active mode the holders' names joined by ",", sorted. Use a
// string tolerance (the host expected) or a list of the acceptable hosts.
func (p *Provider) vipHolder(ctx context.Context, args map[string]any) (any, error) {
	name, _ := args["vip"].(string)
	st, err := p.Cluster.Status(ctx)
	if err != nil {
		return nil, err
	}
	for _, v := range st.VIPs {
		if v.Name != name {
			continue
		}
		if len(v.Holders) > 0 {
			holders := slices.Clone(v.Holders)
			slices.Sort(holders)
			return strings.Join(holders, ","), nil
		}
		return v.Holder, nil
	}
	return nil, fmt.Errorf("cluster %s has no VIP %q", p.Cluster.Spec.Name, name)
}

// serviceHealthy: at least min (default: every) instance of service is
// ready (running and healthy).
func (p *Provider) serviceHealthy(ctx context.Context, args map[string]any) (any, error) {
	svc, _ := args["service"].(string)
	st, err := p.Cluster.Status(ctx)
	if err != nil {
		return nil, err
	}
	total, ready := 0, 0
	for _, c := range st.Containers {
		if c.Service == svc {
			total++
			if c.Ready() {
				ready++
			}
		}
	}
	if total == 0 {
		return nil, fmt.Errorf("service %s has no instances in cluster %s", svc, p.Cluster.Spec.Name)
	}
	min := total
	if m, ok := args["min"].(int64); ok && m > 0 {
		min = int(m)
	}
	return ready >= min, nil
}

// resolves: the name resolves on every host (or the hosts given), asked of
// each host's resolver from inside the host.
func (p *Provider) resolves(ctx context.Context, args map[string]any) (any, error) {
	name, _ := args["name"].(string)
	if !strings.Contains(name, ".") {
		name += "." + p.Cluster.Spec.Domain
	}
	hosts := strList(args["hosts"])
	if len(hosts) == 0 {
		for _, h := range p.Cluster.Spec.Hosts {
			hosts = append(hosts, h.Name)
		}
	}
	for _, h := range hosts {
		resolver := p.Cluster.Spec.HostOverlayAddr(h)
		if !resolver.IsValid() {
			return nil, fmt.Errorf("%q is not a host of %s", h, p.Cluster.Spec.Name)
		}
		ok, err := lookup(ctx, naming.HostNetns(p.Cluster.Spec.Name, h), net.JoinHostPort(resolver.String(), "53"), dns.Fqdn(name))
		if err != nil || !ok {
			return false, nil
		}
	}
	return true, nil
}

func lookup(ctx context.Context, nsName, server, fqdn string) (bool, error) {
	var conn net.Conn
	err := nsthread.DoNamed(nsName, func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "udp", server)
		return err
	})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	m := new(dns.Msg)
	m.SetQuestion(fqdn, dns.TypeA)
	c := &dns.Conn{Conn: conn}
	if err := c.WriteMsg(m); err != nil {
		return false, err
	}
	r, err := c.ReadMsg()
	if err != nil {
		return false, err
	}
	return r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0, nil
}

// http: a request through 127.0.0.1 (a published port), or from inside a
// host or container when host: or container: is given.
func (p *Provider) http(ctx context.Context, args map[string]any) (any, error) {
	prov := maps.Clone(args)
	prov["type"] = "http"
	host, _ := args["host"].(string)
	container, _ := args["container"].(string)
	var nsName string
	switch {
	case container != "":
		st, err := p.Cluster.Status(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range st.Containers {
			if c.Container == container {
				nsName = c.Netns
			}
		}
		if nsName == "" {
			return nil, fmt.Errorf("no container %s", container)
		}
	case host != "":
		if _, ok := p.Cluster.Spec.HostByName(host); !ok {
			return nil, fmt.Errorf("%q is not a host", host)
		}
		nsName = naming.HostNetns(p.Cluster.Spec.Name, host)
	}
	h := chaos.HTTPProvider{Dial: RootDialGuard(p.Cluster.Spec)}
	if nsName != "" {
		h.Dial = func(ctx context.Context, _, addr string) (net.Conn, error) { return DialIn(ctx, nsName, addr) }
	}
	return h.Run(ctx, prov)
}

// quorum: a majority of the etcd members answer.
func (p *Provider) quorum(ctx context.Context) (any, error) {
	st, err := p.store(ctx)
	if err != nil {
		return false, nil
	}
	eps := store.ClientURLs(p.Cluster.Spec)
	up := 0
	for _, ep := range eps {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		if _, err := st.MemberStatus(cctx, ep); err == nil {
			up++
		}
		cancel()
	}
	return up > len(eps)/2, nil
}
