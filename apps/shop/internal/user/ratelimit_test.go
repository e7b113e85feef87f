package user

import (
	"strconv"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestFailureLimiter(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newFailureLimiter(3, time.Minute, clock.now)
	for i := range 3 {
		if _, blocked := l.Blocked("a"); blocked {
			t.Fatalf("blocked after %d failures, limit 3", i)
		}
		l.Fail("a")
		clock.t = clock.t.Add(10 * time.Second)
	}
	wait, blocked := l.Blocked("a")
	if !blocked || wait != 30*time.Second {
		t.Fatalf("after 3 failures at 0, 10, 20 s, at 30 s: blocked %v for %s, want 30s (until the first leaves the window)", blocked, wait)
	}
	if _, blocked := l.Blocked("b"); blocked {
		t.Fatal("another key is blocked")
	}
	clock.t = clock.t.Add(30 * time.Second)
	if _, blocked := l.Blocked("a"); blocked {
		t.Fatal("still blocked once the oldest failure left the window")
	}
	l.Fail("a")
	if _, blocked := l.Blocked("a"); !blocked {
		t.Fatal("a new failure inside the window should block again")
	}
	l.Forget("a")
	if _, blocked := l.Blocked("a"); blocked {
		t.Fatal("Forget did not clear the key")
	}
}

func TestFailureLimiterBoundsMemory(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newFailureLimiter(2, time.Minute, clock.now)
	l.maxKeys = 100
	for i := range 1000 {
		l.Fail("key-" + strconv.Itoa(i))
		if len(l.failures) > l.maxKeys {
			t.Fatalf("%d keys tracked, bound %d", len(l.failures), l.maxKeys)
		}
	}
	// Expired keys go first, before the table is dropped.
	clock.t = clock.t.Add(2 * time.Minute)
	l.Fail("fresh")
	if len(l.failures) != 1 {
		t.Fatalf("after the window, %d keys remain, want only the fresh one", len(l.failures))
	}
}
