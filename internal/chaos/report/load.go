// Package report drives the steady load of a chaos run and writes its
// report: a PNG timeline (requests/s, errors and p99 per second, with the
// fault windows drawn), a text summary and the journal.
package report

import (
	"context"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Load sends Rate requests per second to URL (a port published on
// 127.0.0.1) until its context ends or Stop. At most 4×Rate requests are in
// flight; a request that cannot start because of that counts as an error.
type Load struct {
	URL  string
	Rate int

	mu      sync.Mutex
	start   time.Time
	results []result
	stop    chan struct{}
	once    sync.Once
}

type result struct {
	at      time.Time // sent
	latency time.Duration
	ok      bool
}

// Second is one second of the timeline.
type Second struct {
	T        float64 // seconds since the load started
	Requests int     // sent in that second
	Errors   int     // of them, failed (no answer, timeout, status >= 500)
	P99      time.Duration
}

func (l *Load) stopCh() chan struct{} {
	l.once.Do(func() { l.stop = make(chan struct{}) })
	return l.stop
}

// Stop ends the load (Run returns once requests in flight finish).
func (l *Load) Stop() {
	ch := l.stopCh()
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// Run sends the load until ctx ends or Stop.
func (l *Load) Run(ctx context.Context) {
	stop := l.stopCh()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	l.mu.Lock()
	l.start = time.Now()
	l.mu.Unlock()
	interval := time.Second / time.Duration(max(l.Rate, 1))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	slots := make(chan struct{}, 4*max(l.Rate, 1))
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-tick.C:
		}
		sent := time.Now()
		select {
		case slots <- struct{}{}:
		default:
			l.record(result{at: sent, ok: false})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			ok := false
			resp, err := client.Get(l.URL)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode < 500
			}
			l.record(result{at: sent, latency: time.Since(sent), ok: ok})
		}()
	}
}

func (l *Load) record(r result) {
	l.mu.Lock()
	l.results = append(l.results, r)
	l.mu.Unlock()
}

// Start is when the load began.
func (l *Load) Start() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start
}

// Seconds buckets the results by the second they were sent in.
func (l *Load) Seconds() []Second {
	l.mu.Lock()
	rs := append([]result(nil), l.results...)
	start := l.start
	l.mu.Unlock()
	return bucket(start, rs)
}

func bucket(start time.Time, rs []result) []Second {
	if len(rs) == 0 {
		return nil
	}
	n := 0
	for _, r := range rs {
		n = max(n, int(r.at.Sub(start)/time.Second)+1)
	}
	out := make([]Second, n)
	lat := make([][]time.Duration, n)
	for i := range out {
		out[i].T = float64(i)
	}
	for _, r := range rs {
		i := int(r.at.Sub(start) / time.Second)
		if i < 0 {
			continue
		}
		out[i].Requests++
		if !r.ok {
			out[i].Errors++
		} else {
			lat[i] = append(lat[i], r.latency)
		}
	}
	for i, ls := range lat {
		if len(ls) == 0 {
			continue
		}
		sort.Slice(ls, func(a, b int) bool { return ls[a] < ls[b] })
		out[i].P99 = ls[min(len(ls)-1, (len(ls)*99+99)/100-1)]
	}
	return out
}
