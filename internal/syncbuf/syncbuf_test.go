package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Writers in several goroutines: every write lands whole, and a copy from
// Bytes does not change with later writes.
func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("ab\n"))
			}
		})
	}
	wg.Wait()
	got := b.String()
	if n := strings.Count(got, "ab\n"); n != 800 || len(got) != 2400 {
		t.Fatalf("got %d whole writes in %d bytes, want 800 in 2400", n, len(got))
	}
	snap := b.Bytes()
	b.Write([]byte("more"))
	if len(snap) != 2400 || string(b.Bytes()[2400:]) != "more" {
		t.Fatalf("Bytes is not a copy: snapshot %d bytes, buffer %q", len(snap), b.Bytes()[2400:])
	}
}
