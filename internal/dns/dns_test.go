package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/weft-dev/weft/internal/model"
)

// startServer starts a resolver for "weft" on a free 127.0.0.1 port (free for
// both UDP and TCP) and stops it when the test ends.
func startServer(t *testing.T, ctx context.Context) (*Server, string) {
	t.Helper()
	srv := New("weft", nil)
	var lastErr error
	for range 20 {
		addr := freePort(t)
		if lastErr = srv.Start(ctx, addr); lastErr == nil {
			t.Cleanup(func() { _ = srv.Close() })
			return srv, addr
		}
	}
	t.Fatalf("starting resolver: %v", lastErr)
	return nil, ""
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func query(t *testing.T, network, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	resp, err := exchange(network, server, name, qtype)
	if err != nil {
		t.Fatalf("%s query %s %s: %v", network, dns.TypeToString[qtype], name, err)
	}
	return resp
}

func exchange(network, server, name string, qtype uint16) (*dns.Msg, error) {
	client := &dns.Client{Net: network, Timeout: 2 * time.Second}
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	resp, _, err := client.Exchange(req, server)
	return resp, err
}

func answerAddrs(resp *dns.Msg) []netip.Addr {
	var out []netip.Addr
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			addr, _ := netip.AddrFromSlice(a.A)
			out = append(out, addr.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestThreeReplicasAnswerThreeAddresses(t *testing.T) {
	srv, server := startServer(t, t.Context())
	want := addrs("10.10.0.5", "10.10.0.6", "10.10.0.7")
	srv.SetRecords(map[string][]netip.Addr{
		"web":   {want[2], want[0], want[1]},
		"web-1": {want[0]},
	})

	for _, network := range []string{"udp", "tcp"} {
		resp := query(t, network, server, "web.weft.", dns.TypeA)
		if resp.Rcode != dns.RcodeSuccess || !resp.Authoritative {
			t.Fatalf("%s: rcode %s aa=%v, want NOERROR authoritative", network, dns.RcodeToString[resp.Rcode], resp.Authoritative)
		}
		if got := answerAddrs(resp); !slices.Equal(got, want) {
			t.Errorf("%s: answers %v, want %v", network, got, want)
		}
		for _, rr := range resp.Answer {
			if rr.Header().Ttl != 1 {
				t.Errorf("%s: TTL %d, want 1", network, rr.Header().Ttl)
			}
		}
	}

	resp := query(t, "udp", server, "WeB-1.WEFT.", dns.TypeA)
	if got := answerAddrs(resp); !slices.Equal(got, want[:1]) {
		t.Errorf("mixed-case name: answers %v, want %v", got, want[:1])
	}
	if resp.Question[0].Name != "WeB-1.WEFT." {
		t.Errorf("question echoed as %q, want the client's case", resp.Question[0].Name)
	}
}

func TestNameFlipsToNXDOMAINWhenDropped(t *testing.T) {
	srv, server := startServer(t, t.Context())
	srv.SetRecords(map[string][]netip.Addr{"db": addrs("10.10.0.9"), "db-1": addrs("10.10.0.9")})
	if got := answerAddrs(query(t, "udp", server, "db.weft.", dns.TypeA)); len(got) != 1 {
		t.Fatalf("before drop: answers %v, want one", got)
	}

	srv.SetRecords(map[string][]netip.Addr{"web": addrs("10.10.0.5")})
	for _, name := range []string{"db.weft.", "db-1.weft.", "nothing.weft.", "a.b.weft."} {
		resp := query(t, "udp", server, name, dns.TypeA)
		if resp.Rcode != dns.RcodeNameError {
			t.Errorf("%s: rcode %s, want NXDOMAIN", name, dns.RcodeToString[resp.Rcode])
		}
		if len(resp.Ns) != 1 || resp.Ns[0].Header().Rrtype != dns.TypeSOA || resp.Ns[0].Header().Name != "weft." {
			t.Errorf("%s: authority %v, want the SOA of weft.", name, resp.Ns)
		}
	}
}

func TestRefusedOutsideDomain(t *testing.T) {
	srv, server := startServer(t, t.Context())
	srv.SetRecords(map[string][]netip.Addr{"web": addrs("10.10.0.5")})
	for _, name := range []string{"example.com.", "web.", "weft.example.", "web.weftx."} {
		resp := query(t, "udp", server, name, dns.TypeA)
		if resp.Rcode != dns.RcodeRefused {
			t.Errorf("%s: rcode %s, want REFUSED", name, dns.RcodeToString[resp.Rcode])
		}
		if len(resp.Answer) != 0 {
			t.Errorf("%s: answers %v, want none", name, resp.Answer)
		}
	}
}

func TestAAAAOfKnownNameIsEmptyNoError(t *testing.T) {
	srv, server := startServer(t, t.Context())
	srv.SetRecords(map[string][]netip.Addr{"web": addrs("10.10.0.5")})
	resp := query(t, "udp", server, "web.weft.", dns.TypeAAAA)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Errorf("AAAA: rcode %s answers %v, want NOERROR with none", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
	resp = query(t, "udp", server, "gone.weft.", dns.TypeAAAA)
	if resp.Rcode != dns.RcodeNameError {
		t.Errorf("AAAA of unknown name: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
	resp = query(t, "udp", server, "weft.", dns.TypeSOA)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("SOA of apex: rcode %s answers %v, want one SOA", dns.RcodeToString[resp.Rcode], resp.Answer)
	}
}

func TestPTRAnswersContainerName(t *testing.T) {
	srv, server := startServer(t, t.Context())
	srv.SetRecords(map[string][]netip.Addr{
		"web":   addrs("10.10.0.5", "10.10.0.6"),
		"web-1": addrs("10.10.0.5"),
		"web-2": addrs("10.10.0.6"),
		"db":    addrs("10.10.0.9"),
		"db-1":  addrs("10.10.0.9"),
	})
	for ip, want := range map[string]string{"10.10.0.5": "web-1.weft.", "10.10.0.6": "web-2.weft.", "10.10.0.9": "db-1.weft."} {
		name, err := dns.ReverseAddr(ip)
		if err != nil {
			t.Fatal(err)
		}
		resp := query(t, "udp", server, name, dns.TypePTR)
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Fatalf("PTR %s: rcode %s answers %v", ip, dns.RcodeToString[resp.Rcode], resp.Answer)
		}
		if got := resp.Answer[0].(*dns.PTR).Ptr; got != want {
			t.Errorf("PTR %s = %s, want %s", ip, got, want)
		}
	}
	resp := query(t, "udp", server, "99.0.10.10.in-addr.arpa.", dns.TypePTR)
	if resp.Rcode != dns.RcodeNameError {
		t.Errorf("PTR of unknown address: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
}

func TestLargeAnswerTruncatesOverUDPAndCompletesOverTCP(t *testing.T) {
	srv, server := startServer(t, t.Context())
	var many []netip.Addr
	for i := 1; i <= 100; i++ {
		many = append(many, netip.AddrFrom4([4]byte{10, 10, 1, byte(i)}))
	}
	srv.SetRecords(map[string][]netip.Addr{"big": many})

	udp := query(t, "udp", server, "big.weft.", dns.TypeA)
	if !udp.Truncated || len(udp.Answer) >= len(many) {
		t.Errorf("UDP: truncated=%v with %d answers, want TC set and fewer than %d", udp.Truncated, len(udp.Answer), len(many))
	}
	tcp := query(t, "tcp", server, "big.weft.", dns.TypeA)
	if got := answerAddrs(tcp); tcp.Truncated || !slices.Equal(got, many) {
		t.Errorf("TCP: truncated=%v with %d answers, want all %d", tcp.Truncated, len(got), len(many))
	}
}

func TestConcurrentSetRecordsWhileServing(t *testing.T) {
	srv, server := startServer(t, t.Context())
	setA := map[string][]netip.Addr{"svc": addrs("10.10.0.1", "10.10.0.2")}
	setB := map[string][]netip.Addr{"svc": addrs("10.10.0.3")}
	srv.SetRecords(setA)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			if i%2 == 0 {
				srv.SetRecords(setB)
			} else {
				srv.SetRecords(setA)
			}
		}
	})
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 100 && ctx.Err() == nil; i++ {
				resp, err := exchange("udp", server, "svc.weft.", dns.TypeA)
				if err != nil {
					errs <- err
					return
				}
				// Each answer is one whole snapshot, never a mix.
				got := answerAddrs(resp)
				if !slices.Equal(got, setA["svc"]) && !slices.Equal(got, setB["svc"]) {
					errs <- fmt.Errorf("answer %v is neither snapshot", got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStartFailsWhenPortTaken(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	srv := New("weft", nil)
	defer srv.Close()
	if err := srv.Start(t.Context(), taken.LocalAddr().String()); err == nil {
		t.Fatalf("Start on a bound port succeeded, want an error")
	}
}

func TestCancelStopsServing(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv, server := startServer(t, ctx)
	srv.SetRecords(map[string][]netip.Addr{"web": addrs("10.10.0.5")})
	query(t, "tcp", server, "web.weft.", dns.TypeA)

	cancel()
	deadline := time.Now().Add(3 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", server, 200*time.Millisecond)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("TCP port %s still accepting 3s after cancel", server)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The UDP port must be free again: a new server can bind it.
	again := New("weft", nil)
	defer again.Close()
	deadline = time.Now().Add(3 * time.Second)
	for {
		err := again.Start(t.Context(), server)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rebinding %s after cancel: %v", server, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRecordsFrom(t *testing.T) {
	ip := netip.MustParseAddr
	assign := map[string]model.Assignment{
		"web-1": {Container: "web-1", Service: "web", Index: 1, Host: "h1", IP: ip("10.10.0.7")},
		"web-2": {Container: "web-2", Service: "web", Index: 2, Host: "h2", IP: ip("10.10.0.5")},
		"web-3": {Container: "web-3", Service: "web", Index: 3, Host: "h3", IP: ip("10.10.0.6")},
		"db-1":  {Container: "db-1", Service: "db", Index: 1, Host: "h1", IP: ip("10.10.0.9")},
		"api-1": {Container: "api-1", Service: "api", Index: 1, Host: "h2", IP: ip("10.10.0.20")},
		"job-1": {Container: "job-1", Service: "job", Index: 1, Host: "h3", IP: ip("10.10.0.30")},
		"old-1": {Container: "old-1", Service: "old", Index: 1, Host: "h2", IP: ip("10.10.0.40")},
		// web-4 is drained before it stops; web-5 switched to a new
		// definition whose process has not reported yet.
		"web-4": {Container: "web-4", Service: "web", Index: 4, Host: "h1", IP: ip("10.10.0.8"), Draining: time.Unix(1, 0)},
		"web-5": {Container: "web-5", Service: "web", Index: 5, Host: "h1", IP: ip("10.10.0.10"), Def: "new"},
	}
	status := map[string]model.ContainerStatus{
		"web-4": {Container: "web-4", Host: "h1", IP: ip("10.10.0.8"), State: model.StateRunning, Health: model.HealthHealthy},
		"web-5": {Container: "web-5", Host: "h1", IP: ip("10.10.0.10"), State: model.StateRunning, Health: model.HealthHealthy, Def: "old"},
		"web-1": {Container: "web-1", Host: "h1", IP: ip("10.10.0.7"), State: model.StateRunning, Health: model.HealthHealthy},
		"web-2": {Container: "web-2", Host: "h2", IP: ip("10.10.0.5"), State: model.StateRunning, Health: model.HealthNone},
		"web-3": {Container: "web-3", Host: "h3", IP: ip("10.10.0.6"), State: model.StateRunning, Health: model.HealthUnhealthy},
		"db-1":  {Container: "db-1", Host: "h1", IP: ip("10.10.0.9"), State: model.StateBackoff, Health: model.HealthHealthy},
		"api-1": {Container: "api-1", Host: "h2", IP: ip("10.10.0.20"), State: model.StateRunning, Health: model.HealthStarting},
		// job-1 has no status yet.
		// old-1's status is a stale report from the host it left.
		"old-1": {Container: "old-1", Host: "h1", IP: ip("10.10.0.40"), State: model.StateRunning, Health: model.HealthHealthy},
		// A status without an assignment (container removed) is ignored.
		"gone-1": {Container: "gone-1", Host: "h1", IP: ip("10.10.0.50"), State: model.StateRunning, Health: model.HealthHealthy},
	}
	live := map[string]bool{"h1": true, "h2": true, "h3": true}
	got := RecordsFrom(assign, status, live)
	want := map[string][]netip.Addr{
		"web":   addrs("10.10.0.5", "10.10.0.7"),
		"web-1": addrs("10.10.0.7"),
		"web-2": addrs("10.10.0.5"),
	}
	if len(got) != len(want) {
		t.Errorf("RecordsFrom names %v, want %v", keys(got), keys(want))
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("RecordsFrom[%q] = %v, want %v", name, got[name], w)
		}
	}

	// h2 goes down (its lease expired): its instances leave every name,
	// whatever its last reports said; they come back with its record.
	delete(live, "h2")
	down := RecordsFrom(assign, status, live)
	if !slices.Equal(down["web"], addrs("10.10.0.7")) || len(down["web-2"]) != 0 || len(down) != 2 {
		t.Errorf("RecordsFrom with h2 down = %v, want web and web-1 on h1 only", down)
	}
	live["h2"] = true
	if back := RecordsFrom(assign, status, live); !slices.Equal(back["web"], want["web"]) || !slices.Equal(back["web-2"], want["web-2"]) {
		t.Errorf("RecordsFrom with h2 back = %v, want %v", back, want)
	}
	if none := RecordsFrom(assign, status, nil); len(none) != 0 {
		t.Errorf("RecordsFrom with no live host = %v, want nothing", none)
	}

	// End to end through the server: unready service says NXDOMAIN.
	srv := New("weft", nil)
	srv.SetRecords(got)
	for name, rcode := range map[string]int{"web.weft.": dns.RcodeSuccess, "db.weft.": dns.RcodeNameError, "web-3.weft.": dns.RcodeNameError} {
		req := new(dns.Msg)
		req.SetQuestion(name, dns.TypeA)
		if resp := srv.answer(req, srv.answers.Load()); resp.Rcode != rcode {
			t.Errorf("%s: rcode %s, want %s", name, dns.RcodeToString[resp.Rcode], dns.RcodeToString[rcode])
		}
	}
}

func keys(m map[string][]netip.Addr) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestGoStubResolver checks the answers suit Go's own resolver, which the
// example service uses inside containers (it sends A and AAAA together and
// rejects replies it takes for lame referrals).
func TestGoStubResolver(t *testing.T) {
	srv, server := startServer(t, t.Context())
	srv.SetRecords(map[string][]netip.Addr{
		"web":   addrs("10.10.0.5", "10.10.0.6"),
		"web-1": addrs("10.10.0.5"),
		"web-2": addrs("10.10.0.6"),
	})
	resolver := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
	got, err := resolver.LookupHost(t.Context(), "web.weft.")
	if err != nil {
		t.Fatalf("LookupHost web.weft.: %v", err)
	}
	slices.Sort(got)
	if want := []string{"10.10.0.5", "10.10.0.6"}; !slices.Equal(got, want) {
		t.Errorf("LookupHost web.weft. = %v, want %v", got, want)
	}

	_, err = resolver.LookupHost(t.Context(), "missing.weft.")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("LookupHost missing.weft.: %v, want a not-found DNSError", err)
	}

	names, err := resolver.LookupAddr(t.Context(), "10.10.0.6")
	if err != nil || !slices.Equal(names, []string{"web-2.weft."}) {
		t.Errorf("LookupAddr 10.10.0.6 = %v, %v; want [web-2.weft.]", names, err)
	}
}
