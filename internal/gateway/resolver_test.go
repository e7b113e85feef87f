package gateway

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testDNS is a DNS server on 127.0.0.1 answering A records from a table.
type testDNS struct {
	addr    string
	mu      sync.Mutex
	records map[string][]netip.Addr // fqdn -> addresses
	queries int
}

func startTestDNS(t *testing.T) *testDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &testDNS{addr: pc.LocalAddr().String(), records: map[string][]netip.Addr{}}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: d, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

func (d *testDNS) set(fqdn string, addrs ...netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records[fqdn] = addrs
}

func (d *testDNS) queryCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	d.mu.Lock()
	d.queries++
	addrs, ok := d.records[q.Question[0].Name]
	d.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(q)
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	for _, a := range addrs {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
			A:   a.AsSlice(),
		})
	}
	w.WriteMsg(m)
}

func TestDNSResolverFollowsChangesAndCaches(t *testing.T) {
	server := startTestDNS(t)
	server.set("orders.weft.", ip(9), ip(3))
	res := newDNSResolver("weft", 100*time.Millisecond, []string{server.addr})
	ctx := context.Background()

	got, err := res.Endpoints(ctx, "orders")
	if err != nil || !slices.Equal(got, []netip.Addr{ip(3), ip(9)}) {
		t.Fatalf("Endpoints(orders) = %v, %v; want [127.0.0.3 127.0.0.9] sorted", got, err)
	}
	before := server.queryCount()
	for i := 0; i < 20; i++ {
		res.Endpoints(ctx, "orders")
	}
	if n := server.queryCount() - before; n > 1 {
		t.Errorf("20 lookups within the cache time sent %d queries; want at most 1", n)
	}

	server.set("orders.weft.", ip(4))
	eventually(t, 2*time.Second, "the new answer", func() bool {
		got, err := res.Endpoints(ctx, "orders")
		return err == nil && slices.Equal(got, []netip.Addr{ip(4)})
	})

	got, err = res.Endpoints(ctx, "unknown")
	if err != nil || len(got) != 0 {
		t.Errorf("NXDOMAIN gave %v, %v; want no endpoints and no error", got, err)
	}
}

func TestDNSResolverServesStaleAnswerWhenServerIsDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := pc.LocalAddr().String() // receives queries, never answers
	t.Cleanup(func() { pc.Close() })
	server := startTestDNS(t)
	server.set("cart.weft.", ip(5))
	res := newDNSResolver("weft", 50*time.Millisecond, []string{server.addr})
	if _, err := res.Endpoints(context.Background(), "cart"); err != nil {
		t.Fatal(err)
	}
	res.servers = []string{silent}
	time.Sleep(60 * time.Millisecond) // let the cached answer age past its ttl
	got, err := res.Endpoints(context.Background(), "cart")
	if err != nil || !slices.Equal(got, []netip.Addr{ip(5)}) {
		t.Errorf("with the server silent: %v, %v; want the last answer [127.0.0.5]", got, err)
	}
	if _, err := res.Endpoints(context.Background(), "never-seen"); err == nil {
		t.Errorf("a name never answered, with the server silent, gave no error")
	}
}

func TestGatewayWithDNSFollowsStore(t *testing.T) {
	port, _ := instances(t, echoHandler, echoHandler)
	server := startTestDNS(t)
	server.set("product-service.weft.", ip(1))
	res := newDNSResolver("weft", 200*time.Millisecond, []string{server.addr})
	gw := startGateway(t, Config{Routes: []Route{{Prefix: "/", Service: "product-service", Port: port}}}, res)
	if b := get(t, gw.url+"/").echo(t).Backend; b != "b1" {
		t.Fatalf("request went to %s; want b1", b)
	}
	server.set("product-service.weft.", ip(2))
	eventually(t, 2*time.Second, "traffic to follow the DNS change", func() bool {
		return get(t, gw.url+"/").echo(t).Backend == "b2"
	})
	server.set("product-service.weft.")
	eventually(t, 2*time.Second, "503 once no instance is healthy", func() bool {
		return get(t, gw.url+"/").status == http.StatusServiceUnavailable
	})
}
