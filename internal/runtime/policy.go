package runtime

import (
	"time"

	"github.com/weft-dev/weft/internal/spec"
)

// Restart delays of a container's workload: 100ms, doubling up to 10s, and a
// process that ran 10s counts as healthy again (the next crash restarts it
// after 100ms rather than the grown delay).
const (
	firstRestartDelay = 100 * time.Millisecond
	maxRestartDelay   = 10 * time.Second
	backoffResetAfter = 10 * time.Second
)

// Backoff computes restart delays: First, doubling up to Max, starting over
// after a run of at least ResetAfter. The zero value uses the container
// delays (100ms, 10s, 10s). Container-init uses it for the workload, the
// runtime for container-init itself, the lab's host supervisor for the agent.
type Backoff struct {
	First, Max, ResetAfter time.Duration

	next time.Duration
}

// Delay returns how long to wait before restarting a process that ran for ran.
func (b *Backoff) Delay(ran time.Duration) time.Duration {
	first, maxDelay, reset := b.First, b.Max, b.ResetAfter
	if first <= 0 {
		first = firstRestartDelay
	}
	if maxDelay <= 0 {
		maxDelay = maxRestartDelay
	}
	if reset <= 0 {
		reset = backoffResetAfter
	}
	if b.next == 0 || ran >= reset {
		b.next = first
	}
	d := b.next
	b.next = min(b.next*2, maxDelay)
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
