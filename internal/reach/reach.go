// Package reach tells a host which of its peers it can reach right now, by
// probing them directly over the underlay: what this host's clients would
// meet, whatever the store says. The store's view (a host is down when its
// lease expires) lags when the dead host carried the etcd leader: the
// survivors first elect a new leader, which extends every lease.
//
// Every host's resolver answers probes on Port and probes every other host
// every Interval; a peer that missed MissLimit probes in a row is
// unreachable until it answers again.
package reach

import (
	"time"
)

// Port is the UDP port every host's resolver answers reachability probes
// on, on its underlay address.
const Port = 7948

// Timing: a peer is unreachable after about Interval*MissLimit (1 s) of
// silence, well before its 2 s lease would expire even without a leader
// change; one answer makes it reachable again.
const (
	Interval  = 200 * time.Millisecond
	MissLimit = 5
)

// track is what a host knows of one peer: the sequence number of its last
// probe, whether that probe was answered, the misses in a row, and when the
// last answer came.
type track struct {
	seq      uint64
	answered bool
	misses   int
	heard    time.Time
}

// probe is the next probe's sequence number; the previous probe, if
// unanswered, counts as a miss.
func (t *track) probe() uint64 {
	if t.seq > 0 && !t.answered {
		t.misses++
	}
	t.seq++
	t.answered = false
	return t.seq
}

// answer takes an answer to probe seq, received at now; only the latest
// probe's answer counts (a late answer to an older one says nothing about
// now).
func (t *track) answer(seq uint64, now time.Time) {
	if seq == t.seq {
		t.answered = true
		t.misses = 0
		t.heard = now
	}
}

func (t *track) unreachable(limit int) bool { return t.misses >= limit }
