package naming

import (
	"net/netip"
	"testing"
)

// A MAC comes only from an IPv4 address; anything else (a bad value read
// from the store) is an error, never a panic.
func TestContainerMAC(t *testing.T) {
	cases := []struct {
		ip   netip.Addr
		want string // "" for an error
	}{
		{netip.MustParseAddr("10.10.0.5"), "02:42:0a:0a:00:05"},
		{netip.MustParseAddr("10.10.255.1"), "02:42:0a:0a:ff:01"},
		{netip.MustParseAddr("fd00::5"), ""},
		{netip.MustParseAddr("::ffff:10.10.0.5"), ""},
		{netip.Addr{}, ""},
	}
	for _, tc := range cases {
		mac, err := ContainerMAC(tc.ip)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ContainerMAC(%v) = %v, want an error", tc.ip, mac)
		case tc.want != "" && (err != nil || mac.String() != tc.want):
			t.Errorf("ContainerMAC(%v) = %v, %v; want %s", tc.ip, mac, err, tc.want)
		}
		if got := MACFromIP(tc.ip); got.String() != tc.want {
			t.Errorf("MACFromIP(%v) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}
