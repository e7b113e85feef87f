package ui

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		err    string // substring; "" means accepted
	}{
		{"127.0.0.1:8090", false, ""},
		{"localhost:8090", false, ""},
		{"[::1]:8090", false, ""},
		{"127.0.0.1:0", false, ""},
		{"0.0.0.0:8090", false, "--allow-remote"},
		{":8090", false, "every interface"},
		{"192.168.1.5:8090", false, "reachable from other machines"},
		{"0.0.0.0:8090", true, ""},
		{"127.0.0.1", false, "HOST:PORT"},
		{"127.0.0.1:", false, "no port"},
	} {
		err := CheckListen(tc.addr, tc.remote)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("CheckListen(%q, %v): %v, want accepted", tc.addr, tc.remote, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("CheckListen(%q, %v): %v, want an error saying %q", tc.addr, tc.remote, err, tc.err)
		}
	}
}

func TestGuard(t *testing.T) {
	g := newGuard("127.0.0.1:8123", false)
	for _, tc := range []struct {
		name    string
		host    string
		headers map[string]string
		page    bool // page(r) accepts
		action  bool // action(r) accepts
	}{
		{"own page", "127.0.0.1:8123", map[string]string{ActionHeader: "1", "Origin": "http://127.0.0.1:8123", "Sec-Fetch-Site": "same-origin"}, true, true},
		{"localhost name", "localhost:8123", map[string]string{ActionHeader: "1"}, true, true},
		{"no custom header", "127.0.0.1:8123", nil, true, false},
		{"rebound name", "evil.example:8123", map[string]string{ActionHeader: "1"}, false, false},
		{"other port", "127.0.0.1:9999", map[string]string{ActionHeader: "1"}, false, false},
		{"cross-site fetch", "127.0.0.1:8123", map[string]string{ActionHeader: "1", "Sec-Fetch-Site": "cross-site"}, true, false},
		{"foreign origin", "127.0.0.1:8123", map[string]string{ActionHeader: "1", "Origin": "http://evil.example"}, true, false},
	} {
		r := httptest.NewRequest("POST", "/api/restart", nil)
		r.Host = tc.host
		for k, v := range tc.headers {
			r.Header.Set(k, v)
		}
		if err := g.page(r); (err == nil) != tc.page {
			t.Errorf("%s: page: %v, want accepted=%v", tc.name, err, tc.page)
		}
		if err := g.action(r); (err == nil) != tc.action {
			t.Errorf("%s: action: %v, want accepted=%v", tc.name, err, tc.action)
		}
	}
	// A server told to listen for other machines accepts any Host name,
	// but actions still need the header and the page's own origin.
	open := newGuard("0.0.0.0:8123", true)
	r := httptest.NewRequest("POST", "/api/restart", nil)
	r.Host = "weft.example:8123"
	if err := open.page(r); err != nil {
		t.Errorf("remote guard refused a page request: %v", err)
	}
	if err := open.action(r); err == nil {
		t.Errorf("remote guard accepted an action without %s", ActionHeader)
	}
}
