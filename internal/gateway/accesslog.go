package gateway

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessEntry is one access-log line.
type accessEntry struct {
	Time       time.Time
	RequestID  string
	Method     string
	Path       string
	Status     int
	Bytes      int64
	DurationMS float64
	Route      string
	Upstream   string
	Attempts   int
	Client     string
}

// appendJSON appends the entry as one JSON object, field by field: the
// fields are fixed, and encoding/json's reflection cost more CPU per request
// than the rest of the log.
func (e *accessEntry) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = appendJSONString(b, e.RequestID)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.Path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, e.DurationMS, 'f', -1, 64)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, e.Route)
	b = append(b, `,"upstream":`...)
	b = appendJSONString(b, e.Upstream)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(e.Attempts), 10)
	b = append(b, `,"client":`...)
	b = appendJSONString(b, e.Client)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string the way encoding/json writes
// it: control characters, quotes, backslashes, <, > and & escaped, invalid
// UTF-8 replaced by U+FFFD, and U+2028/U+2029 escaped for JavaScript.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Batching lines saves a write system call per request under load; a line
// waits at most accessFlushDelay.
const (
	accessFlushDelay = 50 * time.Millisecond
	accessFlushSize  = 64 << 10
)

// AccessLogSampling is how much of the traffic the access log records
// (the file's gateway.access_log_sample). Sample is the fraction of
// requests logged: nil (the default) or 1 logs every request, 0 turns the
// log off; in between each request is logged with that probability, and
// every 5xx response is logged whatever the draw. Metrics count every
// request either way.
type AccessLogSampling struct {
	Sample *float64 `json:"access_log_sample,omitempty"`
}

// fraction is the validated sampling fraction.
func (s AccessLogSampling) fraction() (float64, error) {
	if s.Sample == nil {
		return 1, nil
	}
	f := *s.Sample
	if math.IsNaN(f) || f < 0 || f > 1 {
		return 0, fmt.Errorf("access_log_sample %v is not a fraction from 0 (off) to 1 (every request)", f)
	}
	return f, nil
}

// accessLog batches JSON lines and writes them to out.
type accessLog struct {
	out     io.Writer
	sample  float64 // fraction of requests logged; see AccessLogSampling
	mu      sync.Mutex
	buf     []byte
	timer   *time.Timer
	pending bool
}

func newAccessLog(out io.Writer) *accessLog {
	// Room for a full batch plus one line, so appending never reallocates.
	return &accessLog{out: out, sample: 1, buf: make([]byte, 0, accessFlushSize+4<<10)}
}

// setSampling applies s; call it before the log is used.
func (a *accessLog) setSampling(s AccessLogSampling) error {
	f, err := s.fraction()
	if err != nil {
		return err
	}
	a.sample = f
	return nil
}

// keep decides whether e is logged.
func (a *accessLog) keep(e *accessEntry) bool {
	switch {
	case a.sample >= 1:
		return true
	case a.sample <= 0:
		return false
	case e.Status >= 500:
		return true
	}
	return rand.Float64() < a.sample
}

func (a *accessLog) write(e *accessEntry) {
	if !a.keep(e) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf = append(e.appendJSON(a.buf), '\n')
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
