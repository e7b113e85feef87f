package overlay

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/naming"
)

func testPeer(ip, host string) Peer {
	addr := netip.MustParseAddr(ip)
	return Peer{IP: addr, MAC: naming.MACFromIP(addr), Host: netip.MustParseAddr(host)}
}

// stateOf is the kernel state SyncPeers would leave for peers.
func stateOf(peers ...Peer) peerState {
	s := peerState{
		neighbors:    map[netip.Addr]string{},
		remotes:      map[string][]netip.Addr{},
		bridgeStatic: map[string]net.HardwareAddr{},
	}
	for _, p := range peers {
		s.neighbors[p.IP] = p.MAC.String()
		s.remotes[p.MAC.String()] = []netip.Addr{p.Host}
		s.bridgeStatic[p.MAC.String()] = p.MAC
	}
	return s
}

func TestPlanPeersAddsEveryEntryOfNewPeers(t *testing.T) {
	a, b := testPeer("10.10.0.5", "192.168.2.10"), testPeer("10.10.0.9", "192.168.3.10")
	plan := planPeers(stateOf(), []Peer{a, b})
	if plan.result != (SyncResult{Added: 2}) {
		t.Fatalf("result = %+v, want 2 added", plan.result)
	}
	if len(plan.setRemotes) != 2 || len(plan.setBridge) != 2 || len(plan.setNeighbors) != 2 {
		t.Fatalf("plan writes %d remotes, %d bridge, %d neighbors; want 2 of each", len(plan.setRemotes), len(plan.setBridge), len(plan.setNeighbors))
	}
	if plan.setRemotes[0].Host != a.Host || plan.setNeighbors[1].IP != b.IP {
		t.Fatalf("plan targets the wrong peers: %+v", plan)
	}
}

func TestPlanPeersWritesNothingWhenKernelMatches(t *testing.T) {
	peers := []Peer{testPeer("10.10.0.5", "192.168.2.10"), testPeer("10.10.0.9", "192.168.3.10")}
	plan := planPeers(stateOf(peers...), peers)
	if !plan.empty() || plan.result.Changed() {
		t.Fatalf("plan for a matching kernel is not empty: %+v", plan)
	}
}

func TestPlanPeersReplacesOnlyTheRemoteOfAMovedPeer(t *testing.T) {
	before := testPeer("10.10.0.5", "192.168.2.10")
	moved := testPeer("10.10.0.5", "192.168.3.10")
	plan := planPeers(stateOf(before), []Peer{moved})
	if plan.result != (SyncResult{Replaced: 1}) {
		t.Fatalf("result = %+v, want 1 replaced", plan.result)
	}
	if len(plan.setRemotes) != 1 || plan.setRemotes[0].Host != moved.Host {
		t.Fatalf("setRemotes = %+v, want one towards %s", plan.setRemotes, moved.Host)
	}
	if len(plan.setNeighbors)+len(plan.setBridge)+len(plan.delRemotes)+len(plan.delNeighbors)+len(plan.delBridge) != 0 {
		t.Fatalf("a move rewrote more than the remote: %+v", plan)
	}
}

func TestPlanPeersDeletesEveryEntryOfAGonePeer(t *testing.T) {
	kept, gone := testPeer("10.10.0.5", "192.168.2.10"), testPeer("10.10.0.9", "192.168.3.10")
	plan := planPeers(stateOf(kept, gone), []Peer{kept})
	if plan.result != (SyncResult{Deleted: 1}) {
		t.Fatalf("result = %+v, want 1 deleted", plan.result)
	}
	if !slices.Equal(plan.delNeighbors, []netip.Addr{gone.IP}) ||
		len(plan.delRemotes) != 1 || plan.delRemotes[0].Host != gone.Host ||
		len(plan.delBridge) != 1 || plan.delBridge[0].String() != gone.MAC.String() {
		t.Fatalf("plan does not delete exactly the gone peer's entries: %+v", plan)
	}
}

func TestPlanPeersCountsOrphanEntriesAndNotReplacedMACs(t *testing.T) {
	peer := testPeer("10.10.0.5", "192.168.2.10")
	have := stateOf(peer)
	// The IP now maps to another MAC: the old MAC's entries go, as part of
	// the replacement; an FDB entry no neighbor points to counts by itself.
	oldMAC := "02:42:0a:0a:00:63"
	have.neighbors[peer.IP] = oldMAC
	have.remotes[oldMAC] = []netip.Addr{peer.Host}
	orphan := "02:42:0a:0a:00:77"
	have.remotes[orphan] = []netip.Addr{netip.MustParseAddr("192.168.9.9")}

	plan := planPeers(have, []Peer{peer})
	if plan.result != (SyncResult{Replaced: 1, Deleted: 1}) {
		t.Fatalf("result = %+v, want 1 replaced and 1 deleted", plan.result)
	}
	if len(plan.delRemotes) != 2 || len(plan.setNeighbors) != 1 {
		t.Fatalf("plan = %+v, want both stale remotes deleted and the neighbor rewritten", plan)
	}
}

func TestPlanPeersDropsExtraRemotesBeforeReplacing(t *testing.T) {
	peer := testPeer("10.10.0.5", "192.168.2.10")
	have := stateOf(peer)
	have.remotes[peer.MAC.String()] = []netip.Addr{peer.Host, netip.MustParseAddr("192.168.3.10")}
	plan := planPeers(have, []Peer{peer})
	if len(plan.dropRemotes) != 2 || len(plan.setRemotes) != 1 || plan.result != (SyncResult{Replaced: 1}) {
		t.Fatalf("plan = %+v, want both remotes dropped and one set", plan)
	}
}

func TestValidatePeersNamesEachProblem(t *testing.T) {
	local := netip.MustParseAddr("192.168.1.10")
	good := testPeer("10.10.0.5", "192.168.2.10")
	multicast := testPeer("10.10.0.6", "192.168.2.10")
	multicast.MAC = net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1}
	sameMACElsewhere := good
	sameMACElsewhere.IP = netip.MustParseAddr("10.10.0.7")
	sameMACElsewhere.Host = netip.MustParseAddr("192.168.3.10")
	cases := map[string]struct {
		peers []Peer
		want  string
	}{
		"duplicate IP":  {[]Peer{good, good}, "listed twice"},
		"local host":    {[]Peer{testPeer("10.10.0.8", "192.168.1.10")}, "leave local containers out"},
		"multicast MAC": {[]Peer{multicast}, "not a unicast"},
		"MAC two hosts": {[]Peer{good, sameMACElsewhere}, "on two hosts"},
		"IPv6 peer":     {[]Peer{{IP: netip.MustParseAddr("fd00::1"), MAC: good.MAC, Host: good.Host}}, "not an IPv4"},
	}
	for name, c := range cases {
		err := validatePeers(c.peers, local)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
	if err := validatePeers([]Peer{good, testPeer("10.10.0.9", "192.168.3.10")}, local); err != nil {
		t.Errorf("valid peers rejected: %v", err)
	}
}

func TestPeersOfJoinsNeighborsWithRemotes(t *testing.T) {
	a, b := testPeer("10.10.0.9", "192.168.3.10"), testPeer("10.10.0.5", "192.168.2.10")
	have := stateOf(a, b)
	orphan := "02:42:0a:0a:00:77"
	have.remotes[orphan] = []netip.Addr{netip.MustParseAddr("192.168.9.9")}
	got := peersOf(have)
	if len(got) != 3 {
		t.Fatalf("peersOf = %+v, want 3 entries", got)
	}
	if got[0].IP != b.IP || got[0].Host != b.Host || got[1].IP != a.IP || got[1].MAC.String() != a.MAC.String() {
		t.Fatalf("peers not sorted by IP or not joined: %+v", got)
	}
	if got[2].IP.IsValid() || got[2].MAC.String() != orphan {
		t.Fatalf("orphan FDB entry listed as %+v", got[2])
	}
}

func TestHostConfigValidateListsEveryBadField(t *testing.T) {
	err := HostConfig{VNI: 0, Port: 70000, MTU: 10}.validate()
	if err == nil {
		t.Fatal("zero config accepted")
	}
	for _, want := range []string{"VNI", "port", "MTU", "bridge name", "bridge address", "local underlay", "underlay interface"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
