package gateway

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// accessEntry is one access-log line.
type accessEntry struct {
	Time       string  `json:"time"`
	RequestID  string  `json:"request_id"`
	Method     string  `json:"method"`
	Path       string  `json:"path"`
	Status     int     `json:"status"`
	Bytes      int64   `json:"bytes"`
	DurationMS float64 `json:"duration_ms"`
	Route      string  `json:"route"`
	Upstream   string  `json:"upstream"`
	Attempts   int     `json:"attempts"`
	Client     string  `json:"client"`
}

// Batching lines saves a write system call per request under load; a line
// waits at most accessFlushDelay.
const (
	accessFlushDelay = 50 * time.Millisecond
	accessFlushSize  = 64 << 10
)

// accessLog batches JSON lines and writes them to out.
type accessLog struct {
	out     io.Writer
	mu      sync.Mutex
	buf     []byte
	timer   *time.Timer
	pending bool
}

func newAccessLog(out io.Writer) *accessLog { return &accessLog{out: out} }

func (a *accessLog) write(e accessEntry) {
	line, err := json.Marshal(e)
	if err != nil {
		return // only plain strings and numbers: cannot fail
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf = append(append(a.buf, line...), '\n')
	if len(a.buf) >= accessFlushSize {
		a.flushLocked()
		return
	}
	if a.pending {
		return
	}
	a.pending = true
	if a.timer == nil {
		a.timer = time.AfterFunc(accessFlushDelay, a.flush)
	} else {
		a.timer.Reset(accessFlushDelay)
	}
}

func (a *accessLog) flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushLocked()
}

func (a *accessLog) flushLocked() {
	a.pending = false
	if len(a.buf) == 0 {
		return
	}
	// A failing stdout has nowhere to report to; the lines are dropped.
	a.out.Write(a.buf)
	a.buf = a.buf[:0]
}
