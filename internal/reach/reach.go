// Package reach tells a host which other hosts are unreachable right now,
// over the underlay: what this host's clients would meet, whatever the
// store says. The store's view (a host is down when its lease expires) lags
// when the dead host carried the etcd leader: the survivors first elect a
// new leader, which extends every lease.
//
// The managers (the hosts that carry etcd members) are the witnesses. Every
// host's resolver sends each witness a heartbeat every Interval (Monitor);
// each witness answers every heartbeat with a digest of the hosts it has
// not heard from for MissLimit intervals (Witness), and says whether it
// hears a majority of the managers itself (quorate). The work is linear in
// hosts: per interval, hosts × managers heartbeats and as many digests,
// where every host probing every other host was quadratic.
//
// A Monitor decides (verdict) from what it meets:
//   - it reaches no majority of the managers (itself counted when it is
//     one): it is cut off itself, or the cluster lost quorum; no host is
//     unreachable, every last answer stays;
//   - a manager whose witness missed MissLimit answers in a row is
//     unreachable (the manager is probed directly, as every host was);
//   - any other host is unreachable when every quorate witness it reaches
//     agrees that the host is silent. One witness that still hears it keeps
//     it reachable.
//
// Given up: a cut between two workers that both still reach the managers
// goes unseen (each still looks alive to the witnesses).
package reach

import (
	"time"
)

// Port is the UDP port the managers' resolvers (the witnesses) take
// heartbeats on, on their underlay address; digests go back to the
// heartbeat's source port.
const Port = 7948

// Timing: a host is unreachable after about Interval*MissLimit (1 s) of
// silence (plus one interval for a worker, whose silence travels in the next
// digest), well before its 2 s lease would expire even without a leader
// change; one answer (one heartbeat heard) makes it reachable again.
const (
	Interval  = 200 * time.Millisecond
	MissLimit = 5
)

// track is what a host knows of one witness: the sequence number of its
// last heartbeat, whether that heartbeat was answered, the misses in a row,
// and when the last answer came.
type track struct {
	seq      uint64
	answered bool
	misses   int
	heard    time.Time
}

// probe is the next heartbeat's sequence number; the previous heartbeat, if
// unanswered, counts as a miss.
func (t *track) probe() uint64 {
	if t.seq > 0 && !t.answered {
		t.misses++
	}
	t.seq++
	t.answered = false
	return t.seq
}

// answer takes an answer to heartbeat seq, received at now; only the latest
// heartbeat's answer counts (a late answer to an older one says nothing
// about now). It reports whether the answer counted.
func (t *track) answer(seq uint64, now time.Time) bool {
	if seq != t.seq {
		return false
	}
	t.answered = true
	t.misses = 0
	t.heard = now
	return true
}

func (t *track) unreachable(limit int) bool { return t.misses >= limit }
