// Package vip holds the parts of a floating VIP that are not the agent's
// loop: where the VIP is announced (Announcer), how the holder delivers it
// to its local instance (Delivery), how candidates watch the holder
// (probes) and the election's decision rule (Decide).
package vip

import (
	"context"
	"net/netip"
)

// Announcer moves a VIP at the edge of the network, the way the seed moves
// its route table entry: after Announce(vip, holder), packets for vip go to
// holder's underlay address, replacing whatever held it before in one step.
//
// Implementations: the lab's (lab.RouteAnnouncer) replaces one /32 route in
// the VPC router namespace. On AWS one would call ec2:ReplaceRoute on each
// route table of the VPC (DestinationCidrBlock vip/32, NetworkInterfaceId of
// the holder's ENI; ec2:CreateRoute the first time), with source/dest check
// disabled on the holders' ENIs (ec2:ModifyNetworkInterfaceAttribute); on a
// flat layer-2 network, gratuitous ARP for vip from the holder.
type Announcer interface {
	// Announce points vip at holders, atomically: one holder in
	// active-standby, every healthy holder in active-active (a multipath
	// route; on AWS, where a route has one target, active-active needs one
	// route table per client subnet or a load balancer). No holder removes
	// the route.
	Announce(ctx context.Context, vip netip.Addr, holders ...netip.Addr) error
	// Withdraw removes the route for vip only if it still points at holder,
	// so a late withdraw never undoes a successor's Announce.
	Withdraw(ctx context.Context, vip, holder netip.Addr) error
}
