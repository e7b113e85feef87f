package dns

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer: any packet that unpacks gets a reply that packs and, truncated
// to the client's size, fits it; nothing panics.
func FuzzAnswer(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"web.weft.", dns.TypeA}, {"web-2.weft.", dns.TypeAAAA}, {"5.0.10.10.in-addr.arpa.", dns.TypePTR}, {"weft.", dns.TypeSOA}, {"nope.weft.", dns.TypeA}, {"example.com.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(1232, false)
		if b, err := m.Pack(); err == nil {
			f.Add(b)
		}
	}
	s := New("weft", nil)
	s.SetRecords(map[string][]netip.Addr{
		"web":   {netip.MustParseAddr("10.10.0.5"), netip.MustParseAddr("10.10.0.6")},
		"web-2": {netip.MustParseAddr("10.10.0.6")},
	})
	f.Fuzz(func(t *testing.T, packet []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(packet); err != nil {
			return
		}
		resp := s.answer(req, s.answers.Load())
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
		out, err := resp.Pack()
		if err != nil {
			t.Fatalf("reply does not pack: %v", err)
		}
		if len(out) > max(size, dns.MinMsgSize) {
			t.Fatalf("reply of %d bytes over the client's %d", len(out), size)
		}
	})
}
