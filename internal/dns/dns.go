// Package dns is the per-host resolver for service and container names.
//
// Each host's agent runs one Server inside the host's network namespace on
// the host bridge's overlay address. It is authoritative for the cluster's
// domain only and answers from an in-memory answer set that the agent
// replaces whenever the store changes (SetRecords), so only healthy
// instances are ever answered.
//
// There is no upstream resolver in the lab: names outside the domain are
// answered REFUSED rather than forwarded, so a container's lookups never
// leave the machine.
package dns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/weft-dev/weft/internal/model"
)

// ttl is one second so that a change of the answer set reaches clients
// (which may cache) within a second.
const ttl = 1

// reverseSuffix is the zone of IPv4 reverse names.
const reverseSuffix = ".in-addr.arpa."

// Server answers A, AAAA, PTR and SOA queries for one domain over UDP and TCP.
type Server struct {
	domain string // lower-case FQDN, e.g. "weft."
	log    *slog.Logger

	answers atomic.Pointer[answerSet]
	serial  atomic.Uint32

	mu      sync.Mutex
	servers []*dns.Server
	done    chan struct{} // closed by Close; stops the context watcher
	closed  bool
}

// answerSet is an immutable snapshot of what the server answers; it is
// replaced as a whole so that a query sees either the old or the new set.
type answerSet struct {
	byName map[string][]netip.Addr // lower-case relative name -> addresses
	byAddr map[netip.Addr]string   // address -> relative name answered for PTR
	serial uint32
}

// New makes a resolver for domain (e.g. "weft"); it answers nothing until
// SetRecords is called and serves nothing until Start.
func New(domain string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		domain: dns.CanonicalName(domain),
		log:    log,
		done:   make(chan struct{}),
	}
	s.answers.Store(buildAnswerSet(nil, 0))
	return s
}

// Start listens on listen (e.g. "10.10.255.1:53") over UDP and TCP and serves
// until ctx is cancelled or Close is called. It returns once both sockets
// are bound and served, or an error if either cannot be bound. Start binds
// in the network namespace of the calling thread: the agent runs inside the
// host's namespace.
func (s *Server) Start(ctx context.Context, listen string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("starting DNS server on %s: server already closed", listen)
	}
	if len(s.servers) > 0 {
		return fmt.Errorf("starting DNS server on %s: already started", listen)
	}

	var lc net.ListenConfig
	packetConn, err := lc.ListenPacket(ctx, "udp", listen)
	if err != nil {
		return fmt.Errorf("binding DNS UDP socket %s (is another resolver on port 53, or is the bridge address missing?): %w", listen, err)
	}
	listener, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		_ = packetConn.Close()
		return fmt.Errorf("binding DNS TCP socket %s (is another resolver on port 53, or is the bridge address missing?): %w", listen, err)
	}

	handler := dns.HandlerFunc(s.serveDNS)
	udp := &dns.Server{PacketConn: packetConn, Handler: handler}
	tcp := &dns.Server{Listener: listener, Handler: handler, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}

	// Shutdown of a miekg server that has not yet marked itself started is a
	// no-op, so wait for both to start before returning.
	started := make(chan struct{}, 2)
	failed := make(chan error, 2)
	for _, srv := range []*dns.Server{udp, tcp} {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				failed <- err
			}
		}()
	}
	for range 2 {
		select {
		case <-started:
		case err := <-failed:
			_ = packetConn.Close()
			_ = listener.Close()
			return fmt.Errorf("serving DNS on %s: %w", listen, err)
		}
	}
	s.servers = []*dns.Server{udp, tcp}
	s.log.Info("dns resolver listening", "listen", listen, "domain", s.domain)

	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()
	return nil
}

// Close stops serving and releases the sockets. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	var errs []error
	for _, srv := range s.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	s.servers = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping DNS server for %s: %w", s.domain, err)
	}
	return nil
}

// SetRecords atomically replaces the answer set: relative name (e.g. "web"
// or "web-2", without the domain) -> healthy addresses. Names are matched
// case-insensitively. It is safe to call concurrently with serving; the
// caller may reuse records afterwards.
func (s *Server) SetRecords(records map[string][]netip.Addr) {
	s.answers.Store(buildAnswerSet(records, s.serial.Add(1)))
}

func buildAnswerSet(records map[string][]netip.Addr, serial uint32) *answerSet {
	set := &answerSet{
		byName: make(map[string][]netip.Addr, len(records)),
		byAddr: make(map[netip.Addr]string),
		serial: serial,
	}
	for name, addrs := range records {
		key := strings.ToLower(strings.TrimSuffix(name, "."))
		for _, addr := range addrs {
			if addr.IsValid() {
				set.byName[key] = append(set.byName[key], addr.Unmap())
			}
		}
	}
	for name, addrs := range set.byName {
		slices.SortFunc(addrs, netip.Addr.Compare)
		addrs = slices.Compact(addrs)
		set.byName[name] = addrs
		// PTR names the container: a container's name has exactly one
		// address, and when a one-replica service shares it ("web" and
		// "web-1"), the container's name is the longer one.
		if len(addrs) != 1 {
			continue
		}
		if current, ok := set.byAddr[addrs[0]]; !ok || preferForPTR(name, current) {
			set.byAddr[addrs[0]] = name
		}
	}
	return set
}

func preferForPTR(candidate, current string) bool {
	if len(candidate) != len(current) {
		return len(candidate) > len(current)
	}
	return candidate < current
}

// RecordsFrom builds the answer set from the store's assignments and
// statuses (both keyed by container name): every Ready container's name ->
// its IP, and every service name -> the sorted IPs of its Ready containers.
// Containers that are not Ready, have no status, or whose status was
// reported for another host, address or definition (a stale report from
// before a move or a rolling update's switch), and containers being drained,
// are absent, so their names, and services with no Ready container, answer
// NXDOMAIN. So are the containers of hosts not in live (the hosts that are
// up, store.Snapshot.LiveHosts): a host whose leases expired is down, and the
// last status its agent wrote says nothing about it any more.
func RecordsFrom(assign map[string]model.Assignment, status map[string]model.ContainerStatus, live map[string]bool) map[string][]netip.Addr {
	records := make(map[string][]netip.Addr)
	for name, a := range assign {
		container := cmp.Or(a.Container, name)
		if !live[a.Host] || !a.Draining.IsZero() {
			continue // down, or drained before it stops
		}
		st, ok := status[container]
		if !ok || !st.Ready() || !a.IP.IsValid() {
			continue
		}
		if st.Host != "" && st.Host != a.Host {
			continue
		}
		if st.IP.IsValid() && st.IP != a.IP {
			continue
		}
		if st.Def != "" && a.Def != "" && st.Def != a.Def {
			continue // the old definition's process, being replaced
		}
		records[container] = append(records[container], a.IP)
		if a.Service != "" && a.Service != container {
			records[a.Service] = append(records[a.Service], a.IP)
		}
	}
	for name, addrs := range records {
		slices.SortFunc(addrs, netip.Addr.Compare)
		records[name] = slices.Compact(addrs)
	}
	return records
}

func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := s.answer(req, s.answers.Load())
	resp.Truncate(maxResponseSize(w, req))
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("dns reply not sent", "client", w.RemoteAddr(), "err", err)
	}
}

// maxResponseSize is the largest reply the client accepts: 64 KiB over TCP,
// its EDNS0 buffer or 512 bytes over UDP (Truncate then sets TC so the
// client retries over TCP).
func maxResponseSize(w dns.ResponseWriter, req *dns.Msg) int {
	if _, isTCP := w.RemoteAddr().(*net.TCPAddr); isTCP {
		return dns.MaxMsgSize
	}
	if opt := req.IsEdns0(); opt != nil {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}

// answer builds the reply to req from set. It is pure so tests and the
// server share it.
func (s *Server) answer(req *dns.Msg, set *answerSet) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(max(opt.UDPSize(), dns.MinMsgSize), false)
	}
	if len(req.Question) != 1 {
		resp.Rcode = dns.RcodeFormatError
		return resp
	}
	q := req.Question[0]
	qname := dns.CanonicalName(q.Name)
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		resp.Rcode = dns.RcodeRefused
		return resp
	}

	if strings.HasSuffix(qname, reverseSuffix) {
		return s.answerReverse(resp, q, qname, set)
	}
	if !dns.IsSubDomain(s.domain, qname) {
		// No upstream in the lab: refuse instead of forwarding.
		resp.Rcode = dns.RcodeRefused
		return resp
	}
	resp.Authoritative = true

	if qname == s.domain {
		if q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY {
			resp.Answer = append(resp.Answer, s.soa(set))
		} else {
			resp.Ns = append(resp.Ns, s.soa(set))
		}
		return resp
	}

	relative := strings.TrimSuffix(qname, "."+s.domain)
	addrs, ok := set.byName[relative]
	if !ok {
		resp.Rcode = dns.RcodeNameError
		resp.Ns = append(resp.Ns, s.soa(set))
		return resp
	}
	for _, addr := range shuffled(addrs) {
		switch {
		case addr.Is4() && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
			resp.Answer = append(resp.Answer, &dns.A{Hdr: header(q.Name, dns.TypeA), A: addr.AsSlice()})
		case addr.Is6() && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY):
			resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: header(q.Name, dns.TypeAAAA), AAAA: addr.AsSlice()})
		}
	}
	if len(resp.Answer) == 0 {
		// The name exists but has no record of this type (e.g. AAAA on an
		// IPv4 overlay): NOERROR, with the SOA for negative caching.
		resp.Ns = append(resp.Ns, s.soa(set))
	}
	return resp
}

// answerReverse answers PTR queries for addresses in the answer set. The
// server is not authoritative for in-addr.arpa as a whole, so reverse
// names it cannot parse as one IPv4 address are refused.
func (s *Server) answerReverse(resp *dns.Msg, q dns.Question, qname string, set *answerSet) *dns.Msg {
	addr, ok := parseReverseName(qname)
	if !ok {
		resp.Rcode = dns.RcodeRefused
		return resp
	}
	name, known := set.byAddr[addr]
	if !known {
		resp.Rcode = dns.RcodeNameError
		return resp
	}
	resp.Authoritative = true
	if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
		resp.Answer = append(resp.Answer, &dns.PTR{Hdr: header(q.Name, dns.TypePTR), Ptr: name + "." + s.domain})
	}
	return resp
}

// parseReverseName turns "5.0.10.10.in-addr.arpa." into 10.10.0.5.
func parseReverseName(qname string) (netip.Addr, bool) {
	labels := strings.Split(strings.TrimSuffix(qname, reverseSuffix), ".")
	if len(labels) != 4 {
		return netip.Addr{}, false
	}
	slices.Reverse(labels)
	addr, err := netip.ParseAddr(strings.Join(labels, "."))
	if err != nil || !addr.Is4() {
		return netip.Addr{}, false
	}
	return addr, true
}

func (s *Server) soa(set *answerSet) *dns.SOA {
	return &dns.SOA{
		Hdr:     header(s.domain, dns.TypeSOA),
		Ns:      "ns." + s.domain,
		Mbox:    "hostmaster." + s.domain,
		Serial:  set.serial,
		Refresh: 60,
		Retry:   10,
		Expire:  600,
		Minttl:  ttl,
	}
}

func header(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// shuffled returns a shuffled copy so clients that take the first address
// spread over the replicas; the snapshot itself is shared and never mutated.
func shuffled(addrs []netip.Addr) []netip.Addr {
	out := slices.Clone(addrs)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
