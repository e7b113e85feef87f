package runtime

import (
	"time"

	"github.com/weft-dev/weft/internal/spec"
)

const (
	firstRestartDelay = 100 * time.Millisecond
	maxRestartDelay   = 10 * time.Second
	// A process that ran this long counts as healthy again: the next crash
	// restarts it after firstRestartDelay rather than the grown delay.
	backoffResetAfter = 10 * time.Second
)

// backoff computes restart delays: 100ms, doubling up to 10s, starting over
// after a run of at least 10s.
type backoff struct{ next time.Duration }

// delay returns how long to wait before restarting a process that ran for ran.
func (b *backoff) delay(ran time.Duration) time.Duration {
	if b.next == 0 || ran >= backoffResetAfter {
		b.next = firstRestartDelay
	}
	d := b.next
	b.next = min(b.next*2, maxRestartDelay)
	return d
}

// shouldRestart applies a restart policy to an exit code (-1: unknown, which
// counts as a failure because nothing says the process finished cleanly).
func shouldRestart(policy string, exitCode int) bool {
	switch policy {
	case spec.RestartNever:
		return false
	case spec.RestartOnFailure:
		return exitCode != 0
	default:
		return true
	}
}
