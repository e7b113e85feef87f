package ui

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// ActionHeader must be on every action request (restart, logs). A page of
// another site cannot add a custom header to a cross-origin request without
// a CORS preflight, which this server never grants; a plain link or form
// cannot add one at all.
const ActionHeader = "X-Weft-UI"

// CheckListen refuses an address other hosts could reach unless allowRemote
// says so: the page acts with the authority of the user who runs it.
func CheckListen(addr string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %v; give HOST:PORT, e.g. 127.0.0.1:8090", addr, err)
	}
	if port == "" {
		return fmt.Errorf("--listen %q: no port; give HOST:PORT, e.g. 127.0.0.1:8090", addr)
	}
	if loopback(host) || allowRemote {
		return nil
	}
	what := host
	if host == "" {
		what = "every interface"
	}
	return fmt.Errorf("--listen %q: %s is reachable from other machines, and anyone who reaches the page can restart containers and read their logs; listen on 127.0.0.1, or add --allow-remote if that is what you want", addr, what)
}

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// guard keeps out requests that did not come from this page in a browser
// of this machine.
type guard struct {
	// hosts are the Host headers accepted (loopback listeners only; nil
	// accepts any). A page of another site that rebinds its own name to
	// 127.0.0.1 sends its own name, and is refused.
	hosts map[string]bool
}

// newGuard makes the guard of a server listening on addr (the real address,
// with the port the system chose when it was 0).
func newGuard(addr string, remote bool) guard {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || remote || !loopback(host) {
		return guard{}
	}
	return guard{hosts: map[string]bool{
		net.JoinHostPort("127.0.0.1", port): true,
		net.JoinHostPort("localhost", port): true,
		net.JoinHostPort("::1", port):       true,
		net.JoinHostPort(host, port):        true,
	}}
}

var errForeignHost = errors.New("this page answers only as 127.0.0.1 or localhost")

// page checks any request: its Host.
func (g guard) page(r *http.Request) error {
	if g.hosts != nil && !g.hosts[strings.ToLower(r.Host)] {
		return fmt.Errorf("%w, not %q", errForeignHost, r.Host)
	}
	return nil
}

// action checks a request that acts or reads logs: its Host, the custom
// header, and, when the browser says where it comes from, that it is this
// page's own origin.
func (g guard) action(r *http.Request) error {
	if err := g.page(r); err != nil {
		return err
	}
	if r.Header.Get(ActionHeader) != "1" {
		return fmt.Errorf("actions need the %s: 1 header (the page sends it; other sites cannot)", ActionHeader)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("refusing a %s request: actions come from this page only", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("refusing a request from origin %q: actions come from this page only", origin)
		}
	}
	return nil
}
