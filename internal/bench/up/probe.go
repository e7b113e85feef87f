package up

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/nsthread"
)

// hostProbe asks one host's resolver for names and connects to addresses
// from one container on that host. Both sockets are bound to lab addresses
// that exist only inside the lab namespaces, so no probe can leave from the
// machine's own namespace.
type hostProbe struct {
	host        string
	dnsConn     *dns.Conn
	containerNs netns.NsHandle
	containerIP netip.Addr
}

// openHostProbe opens a UDP socket inside hostNetns bound to the host's
// overlay address and connected to its resolver there, and keeps a handle
// of containerNetns (a container on the host whose address is containerIP).
func openHostProbe(host, hostNetns string, overlay netip.Addr, containerNetns string, containerIP netip.Addr) (*hostProbe, error) {
	hostNs, err := netns.GetFromName(hostNetns)
	if err != nil {
		return nil, fmt.Errorf("opening network namespace %s of host %s: %w", hostNetns, host, err)
	}
	defer hostNs.Close()
	var udp *net.UDPConn
	err = nsthread.Do(hostNs, func() error {
		var err error
		local := net.UDPAddrFromAddrPort(netip.AddrPortFrom(overlay, 0))
		resolver := net.UDPAddrFromAddrPort(netip.AddrPortFrom(overlay, 53))
		udp, err = net.DialUDP("udp", local, resolver)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("opening a DNS socket on %s in %s: %w", overlay, hostNetns, err)
	}
	cns, err := netns.GetFromName(containerNetns)
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("opening network namespace %s of a container on %s: %w", containerNetns, host, err)
	}
	return &hostProbe{host: host, dnsConn: &dns.Conn{Conn: udp}, containerNs: cns, containerIP: containerIP}, nil
}

func (p *hostProbe) Close() {
	_ = p.dnsConn.Close()
	_ = p.containerNs.Close()
}

// resolve asks the host's resolver for the A record of fqdn once; ok is
// false while the name is unknown.
func (p *hostProbe) resolve(ctx context.Context, fqdn string, timeout time.Duration) (addr netip.Addr, ok bool, err error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(fqdn), dns.TypeA)
	client := &dns.Client{Net: "udp", Timeout: timeout}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, _, err := client.ExchangeWithConnContext(qctx, m, p.dnsConn)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("asking the resolver of %s for %s: %w", p.host, fqdn, err)
	}
	for _, rr := range resp.Answer {
		if a, isA := rr.(*dns.A); isA {
			if addr, valid := netip.AddrFromSlice(a.A.To4()); valid {
				return addr, true, nil
			}
		}
	}
	return netip.Addr{}, false, nil
}

// connect opens and closes one TCP connection to target from the probe's
// container.
func (p *hostProbe) connect(ctx context.Context, target netip.AddrPort, timeout time.Duration) error {
	return nsthread.Do(p.containerNs, func() error {
		d := net.Dialer{Timeout: timeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(p.containerIP, 0))}
		conn, err := d.DialContext(ctx, "tcp", target.String())
		if err != nil {
			return fmt.Errorf("connecting from %s on %s to %s: %w", p.containerIP, p.host, target, err)
		}
		return conn.Close()
	})
}

// newContainerLatency is how long after the apply one host could first
// resolve a new container and then connect to it.
type newContainerLatency struct {
	Resolvable time.Duration
	Reachable  time.Duration
	Host       string
	Attempts   int   // connects tried, the last one succeeded
	LastErr    error // why the attempt before the successful one failed
}

// waitNewContainer polls until fqdn resolves at this host and the answered
// address accepts a connection on port from the host's container, and
// returns both times since start.
func (p *hostProbe) waitNewContainer(ctx context.Context, start time.Time, fqdn string, port uint16, poll time.Duration) (newContainerLatency, error) {
	lat := newContainerLatency{Host: p.host}
	var lastErr error
	var addr netip.Addr
	for {
		a, ok, err := p.resolve(ctx, fqdn, 250*time.Millisecond)
		if ok {
			addr, lat.Resolvable = a, time.Since(start)
			break
		}
		lastErr = err
		if err := sleep(ctx, poll); err != nil {
			return lat, fmt.Errorf("host %s never resolved %s: %w", p.host, fqdn, errors.Join(err, lastErr))
		}
	}
	// A SYN sent before the path existed is lost and would be retried by TCP
	// only after a second, so attempts are short and grow only when the
	// machine is slow to answer at all.
	attempt := 50 * time.Millisecond
	target := netip.AddrPortFrom(addr, port)
	for {
		err := p.connect(ctx, target, attempt)
		lat.Attempts++
		if err == nil {
			lat.Reachable, lat.LastErr = time.Since(start), lastErr
			return lat, nil
		}
		lastErr = err
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			attempt = min(2*attempt, time.Second)
		}
		if err := sleep(ctx, poll); err != nil {
			return lat, fmt.Errorf("host %s resolved %s to %s but never connected: %w", p.host, fqdn, addr, errors.Join(err, lastErr))
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
