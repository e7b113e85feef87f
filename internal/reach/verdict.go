package reach

import "time"

// witnessView is what a monitor has met of one witness: whether it answers
// (fewer than MissLimit misses in a row), when its last answer came, and its
// last digest with when it came.
type witnessView struct {
	reachable bool
	heard     time.Time
	digest    *Digest
	digestAt  time.Time
}

// verdict decides, for host self, which hosts are unreachable and, for
// those it knows of, when they were last heard, from its views of the
// witnesses (the managers, by name; self among them when it is one).
//
//   - Without a majority of the managers reached (self counted when it is
//     one) nothing is unreachable: this host is cut off, or the cluster
//     lost quorum, and its silence says nothing of the others.
//   - A manager (not self) that does not answer is unreachable; it was last
//     heard at its last answer.
//   - Any other host (not self) is unreachable when every reachable witness
//     whose digest is quorate lists it silent, and at least one does; it
//     was last heard when the latest of them heard it.
func verdict(self string, witnesses map[string]witnessView) (map[string]bool, map[string]time.Time) {
	down, since := map[string]bool{}, map[string]time.Time{}
	reached := 0
	for name, v := range witnesses {
		if name == self || v.reachable {
			reached++
		}
	}
	if reached*2 <= len(witnesses) {
		return down, since
	}
	judges := 0
	votes := map[string]int{}
	last := map[string]time.Time{}
	for name, v := range witnesses {
		if name == self {
			// Its own witness may be out of reach of this process (the
			// resolver restarting, seen from the agent): it is still alive.
		} else if !v.reachable {
			down[name] = true
			if !v.heard.IsZero() {
				since[name] = v.heard
			}
			continue
		}
		if !v.reachable || v.digest == nil || !v.digest.Quorate {
			continue
		}
		judges++
		for _, s := range v.digest.Silent {
			votes[s.Host]++
			if s.Heard {
				if at := v.digestAt.Add(-s.Ago); at.After(last[s.Host]) {
					last[s.Host] = at
				}
			}
		}
	}
	if judges == 0 {
		return down, since
	}
	for host, n := range votes {
		if _, manager := witnesses[host]; manager || host == self || n < judges {
			continue
		}
		down[host] = true
		if t, ok := last[host]; ok {
			since[host] = t
		}
	}
	return down, since
}
