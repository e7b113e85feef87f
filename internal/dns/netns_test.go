package dns

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestServesOnBridgeAddressInNetns runs the resolver the way the agent does:
// inside a host namespace, on port 53 of a bridge's overlay address, queried
// from inside that namespace.
func TestServesOnBridgeAddressInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	nsName := fmt.Sprintf("weft-dnstest-%d-%d", os.Getpid(), rand.IntN(1<<20))

	// This thread enters nsName and stays locked until it is back; if it
	// cannot return, it stays locked and dies with the test goroutine.
	runtime.LockOSThread()
	origin, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("getting current netns: %v", err)
	}
	defer origin.Close()
	hostNS, err := netns.NewNamed(nsName)
	if err != nil {
		t.Fatalf("creating netns %s: %v", nsName, err)
	}
	t.Cleanup(func() { _ = netns.DeleteNamed(nsName) })
	defer hostNS.Close()
	defer func() {
		if err := netns.Set(origin); err != nil {
			t.Errorf("returning to the original netns: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()

	handle, err := netlink.NewHandleAt(hostNS)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", nsName, err)
	}
	defer handle.Close()
	bridge := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br-test"}}
	if err := handle.LinkAdd(bridge); err != nil {
		t.Fatalf("creating bridge: %v", err)
	}
	bridgeAddr, _ := netlink.ParseAddr("10.10.255.1/16")
	if err := handle.AddrAdd(bridge, bridgeAddr); err != nil {
		t.Fatalf("adding %s to bridge: %v", bridgeAddr, err)
	}
	if err := handle.LinkSetUp(bridge); err != nil {
		t.Fatalf("setting bridge up: %v", err)
	}
	if lo, err := handle.LinkByName("lo"); err == nil {
		_ = handle.LinkSetUp(lo)
	}

	srv := New("weft", nil)
	if err := srv.Start(t.Context(), "10.10.255.1:53"); err != nil {
		t.Fatalf("starting resolver in %s: %v", nsName, err)
	}
	defer srv.Close()
	want := addrs("10.10.0.5", "10.10.0.6")
	srv.SetRecords(map[string][]netip.Addr{"web": want})

	// The client socket is created on this thread, so inside nsName, and is
	// bound to the bridge address: were it ever created in another
	// namespace, binding fails and nothing is sent.
	bridgeIP := net.IPv4(10, 10, 255, 1)
	for network, local := range map[string]net.Addr{"udp": &net.UDPAddr{IP: bridgeIP}, "tcp": &net.TCPAddr{IP: bridgeIP}} {
		client := &dns.Client{Net: network, Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: local}}
		req := new(dns.Msg)
		req.SetQuestion("web.weft.", dns.TypeA)
		resp, _, err := client.Exchange(req, "10.10.255.1:53")
		if err != nil {
			t.Fatalf("%s query in %s: %v", network, nsName, err)
		}
		if got := answerAddrs(resp); !slices.Equal(got, want) {
			t.Errorf("%s in netns: answers %v, want %v", network, got, want)
		}
	}
}
