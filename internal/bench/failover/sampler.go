package failover

import (
	"context"
	"sync"
	"time"
)

// sampleEvery is how often the sampler looks at the two hosts.
const sampleEvery = 10 * time.Millisecond

// sampler counts instants with two holders of one VIP: both gateway hosts
// deliver it (weft: the VIP is live in the host's kernel; keepalived: the
// instance is MASTER, its delivery being always on) and both are reachable
// (leg on the router up). It also counts, apart, instants when both
// believe they hold it, reachable or not.
type sampler struct {
	legUp func(host int) bool
	holds func(host int) bool

	mu                  sync.Mutex
	samples, two, twoUp int
}

func (s *sampler) run(ctx context.Context) {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		holding, reachable := 0, 0
		for i := range 2 {
			if s.holds(i) {
				holding++
				if s.legUp(i) {
					reachable++
				}
			}
		}
		s.mu.Lock()
		s.samples++
		if holding == 2 {
			s.two++
		}
		if reachable == 2 {
			s.twoUp++
		}
		s.mu.Unlock()
	}
}

// doubles is the number of samples with two reachable holders so far.
func (s *sampler) doubles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.twoUp
}

func (s *sampler) counts() (samples, two, twoUp int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.two, s.twoUp
}
