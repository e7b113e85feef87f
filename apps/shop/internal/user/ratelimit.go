package user

import (
	"sync"
	"time"
)

// failureLimiter counts failed logins per key (an email, a client address)
// in a sliding window, and refuses a key that reached its limit until its
// oldest counted failure leaves the window. It lives in one process: with n
// replicas of user-service a client gets up to n times the limit.
type failureLimiter struct {
	limit   int
	window  time.Duration
	maxKeys int
	now     func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time // oldest first, at most limit entries
}

func newFailureLimiter(limit int, window time.Duration, now func() time.Time) *failureLimiter {
	return &failureLimiter{limit: limit, window: window, maxKeys: 100_000, now: now, failures: map[string][]time.Time{}}
}

// recent drops the failures of key older than the window; mu is held.
func (l *failureLimiter) recent(key string, now time.Time) []time.Time {
	times := l.failures[key]
	i := 0
	for i < len(times) && now.Sub(times[i]) >= l.window {
		i++
	}
	times = times[i:]
	if len(times) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = times
	return times
}

// Blocked tells whether key reached the limit, and for how long it stays
// blocked.
func (l *failureLimiter) Blocked(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	times := l.recent(key, now)
	if len(times) < l.limit {
		return 0, false
	}
	return times[0].Add(l.window).Sub(now), true
}

// Fail counts one failure of key.
func (l *failureLimiter) Fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if _, known := l.failures[key]; !known && len(l.failures) >= l.maxKeys {
		l.prune(now)
	}
	times := append(l.recent(key, now), now)
	if len(times) > l.limit {
		times = times[len(times)-l.limit:]
	}
	l.failures[key] = times
}

// Forget clears key, after a successful login.
func (l *failureLimiter) Forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

// prune drops expired keys, and if the table is still full, all of it: a
// flood of distinct keys must not grow memory without bound. mu is held.
func (l *failureLimiter) prune(now time.Time) {
	for key := range l.failures {
		l.recent(key, now)
	}
	if len(l.failures) >= l.maxKeys {
		clear(l.failures)
	}
}
