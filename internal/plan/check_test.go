package plan

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/model"
)

func TestCheckAssignment(t *testing.T) {
	c := parse(t, example)
	placed, err := Place(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range placed {
		if err := CheckAssignment(c, name, a); err != nil {
			t.Errorf("Place made an assignment CheckAssignment refuses: %v", err)
		}
	}
	good := placed["web-1"]
	with := func(edit func(a *model.Assignment)) model.Assignment {
		a := good
		edit(&a)
		return a
	}
	v6 := netip.MustParseAddr("fd00::5")
	cases := []struct {
		name    string
		key     string
		a       model.Assignment
		noSpec  bool   // checked without the applied file
		wantErr string // "" for accepted
	}{
		{"as placed", "web-1", good, false, ""},
		{"as placed, no file", "web-1", good, true, ""},
		{"a service the file no longer has", "gone-1", with(func(a *model.Assignment) { a.Service, a.Container = "gone", "gone-1" }), false, ""},
		{"key and container differ", "web-2", good, false, `names container "web-1"`},
		{"container is not service-index", "web-1", with(func(a *model.Assignment) { a.Index = 7 }), false, "replica 7"},
		{"index 0", "web-0", with(func(a *model.Assignment) { a.Index, a.Container = 0, "web-0" }), true, "replica 0"},
		{"no host", "web-1", with(func(a *model.Assignment) { a.Host = "" }), true, "no host"},
		{"unknown host", "web-1", with(func(a *model.Assignment) { a.Host = "host9" }), false, `host "host9" is not in cluster`},
		{"IPv6 address", "web-1", with(func(a *model.Assignment) { a.IP, a.MAC = v6, "02:42:00:00:00:05" }), true, "not IPv4"},
		{"no address", "web-1", with(func(a *model.Assignment) { a.IP = netip.Addr{} }), true, "not IPv4"},
		{"IPv4-mapped IPv6 address", "web-1", with(func(a *model.Assignment) { a.IP = netip.AddrFrom16(good.IP.As16()) }), true, "not IPv4"},
		{"MAC of another address", "web-1", with(func(a *model.Assignment) { a.MAC = "02:42:0a:0a:00:63" }), true, "is not 02:42"},
		{"outside the overlay", "web-1", with(func(a *model.Assignment) {
			a.IP = netip.MustParseAddr("192.168.1.10")
			a.MAC = "02:42:c0:a8:01:0a"
		}), false, "not a container address"},
		{"outside the overlay, no file", "web-1", with(func(a *model.Assignment) {
			a.IP = netip.MustParseAddr("192.168.1.10")
			a.MAC = "02:42:c0:a8:01:0a"
		}), true, ""},
		{"a host's bridge address", "web-1", with(func(a *model.Assignment) {
			a.IP = netip.MustParseAddr("10.10.255.1")
			a.MAC = "02:42:0a:0a:ff:01"
		}), false, "not a container address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := c
			if tc.noSpec {
				cl = nil
			}
			err := CheckAssignment(cl, tc.key, tc.a)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
