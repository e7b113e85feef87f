package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// Resolver returns the current healthy endpoints (IPs) of a service. An
// empty list with a nil error means the service has no healthy instance.
type Resolver interface {
	Endpoints(ctx context.Context, service string) ([]netip.Addr, error)
}

// ResolvConf is where the container's resolver configuration lives; weft
// points it at the host's resolver, which answers healthy instances only.
const ResolvConf = "/etc/resolv.conf"

// staleFor is how long answers keep being served when the resolver cannot be
// reached: the endpoints a second ago beat failing every request.
const staleFor = 30 * time.Second

// dnsQueryTimeout bounds one question to one server.
const dnsQueryTimeout = time.Second

// DNSResolver asks the cluster's DNS for <service>.<domain>. A records and
// caches each answer for a short time, so endpoint changes in the store reach
// the gateway within ttl plus the resolver's own delay, without a restart.
type DNSResolver struct {
	domain string
	ttl    time.Duration
	// servers are host:port; nil means read ResolvConf on every refresh so a
	// rewritten resolv.conf is followed.
	servers []string
	client  *dns.Client

	lookups singleflight.Group
	mu      sync.Mutex
	cache   map[string]cachedEndpoints
}

type cachedEndpoints struct {
	addrs   []netip.Addr
	fetched time.Time
}

// NewDNSResolver returns a Resolver that asks the nameservers of
// /etc/resolv.conf, caching answers for ttl (0 means one second).
func NewDNSResolver(domain string, ttl time.Duration) Resolver {
	return newDNSResolver(domain, ttl, nil)
}

func newDNSResolver(domain string, ttl time.Duration, servers []string) *DNSResolver {
	if ttl <= 0 {
		ttl = time.Second
	}
	return &DNSResolver{
		domain:  domain,
		ttl:     ttl,
		servers: servers,
		client:  &dns.Client{Net: "udp", Timeout: dnsQueryTimeout},
		cache:   make(map[string]cachedEndpoints),
	}
}

// Endpoints returns the service's addresses sorted, so that round robin over
// successive answers stays fair.
func (r *DNSResolver) Endpoints(ctx context.Context, service string) ([]netip.Addr, error) {
	now := time.Now()
	r.mu.Lock()
	cached, ok := r.cache[service]
	r.mu.Unlock()
	if ok && now.Sub(cached.fetched) < r.ttl {
		return cached.addrs, nil
	}
	// One query per service in flight however many requests wait for it; the
	// query runs detached from any one request's cancellation.
	ch := r.lookups.DoChan(service, func() (any, error) {
		addrs, err := r.lookup(context.WithoutCancel(ctx), service)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.cache[service] = cachedEndpoints{addrs: addrs, fetched: time.Now()}
		r.mu.Unlock()
		return addrs, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err == nil {
			return res.Val.([]netip.Addr), nil
		}
		if ok && now.Sub(cached.fetched) < staleFor {
			return cached.addrs, nil
		}
		return nil, res.Err
	}
}

func (r *DNSResolver) fqdn(service string) string {
	if r.domain == "" {
		return dns.Fqdn(service)
	}
	return dns.Fqdn(service + "." + strings.Trim(r.domain, "."))
}

func (r *DNSResolver) lookup(ctx context.Context, service string) ([]netip.Addr, error) {
	servers := r.servers
	if servers == nil {
		conf, err := dns.ClientConfigFromFile(ResolvConf)
		if err != nil {
			return nil, fmt.Errorf("reading nameservers from %s: %w", ResolvConf, err)
		}
		for _, s := range conf.Servers {
			servers = append(servers, net.JoinHostPort(s, conf.Port))
		}
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("resolving %s: no nameserver configured in %s", service, ResolvConf)
	}
	name := r.fqdn(service)
	query := new(dns.Msg)
	query.SetQuestion(name, dns.TypeA)
	var errs []error
	for _, server := range servers {
		ctx, cancel := context.WithTimeout(ctx, dnsQueryTimeout)
		answer, _, err := r.client.ExchangeContext(ctx, query, server)
		if err == nil && answer.Truncated {
			tcp := &dns.Client{Net: "tcp", Timeout: dnsQueryTimeout}
			answer, _, err = tcp.ExchangeContext(ctx, query, server)
		}
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("asking %s for %s: %w", server, name, err))
			continue
		}
		switch answer.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return addrsOf(answer), nil
		default:
			errs = append(errs, fmt.Errorf("asking %s for %s: answer %s", server, name, dns.RcodeToString[answer.Rcode]))
		}
	}
	return nil, errors.Join(errs...)
}

func addrsOf(answer *dns.Msg) []netip.Addr {
	var addrs []netip.Addr
	for _, rr := range answer.Answer {
		a, ok := rr.(*dns.A)
		if !ok {
			continue
		}
		if addr, ok := netip.AddrFromSlice(a.A); ok {
			addrs = append(addrs, addr.Unmap())
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs)
}
