package reschedule

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/naming"
)

// timeline is when the leader acted, measured from the crash, as its agent
// logged it (0 when not found).
type timeline struct {
	SeenDown time.Duration // the leader noticed host1's registration gone ("host down")
	Moved    time.Duration // the leader wrote web-1's new assignment ("placement changed", moved web-1)
}

// leaderTimeline reads the agent logs of the surviving hosts for the
// leader's first "host down host=host1" and first placement moving web-1
// after the crash.
func leaderTimeline(stateRoot, cluster string, hosts []string, crash time.Time) timeline {
	if stateRoot == "" {
		stateRoot = naming.DefaultStateRoot
	}
	var down, moved time.Time
	for _, h := range hosts {
		f, err := os.Open(filepath.Join(naming.HostStateDir(stateRoot, cluster, h), "agent.log"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			at, ok := logTime(sc.Text())
			if !ok || at.Before(crash) {
				continue
			}
			line := sc.Text()
			switch {
			case strings.Contains(line, `msg="host down"`) && strings.Contains(line, "host=host1"):
				down = earliest(down, at)
			case strings.Contains(line, `msg="placement changed"`) && movedWeb(line):
				moved = earliest(moved, at)
			}
		}
		f.Close()
	}
	since := func(t time.Time) time.Duration {
		if t.IsZero() {
			return 0
		}
		return t.Sub(crash)
	}
	return timeline{SeenDown: since(down), Moved: since(moved)}
}

// logTime reads the time= field that starts an agent's slog text line.
func logTime(line string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(line, "time=")
	if !ok {
		return time.Time{}, false
	}
	stamp, _, _ := strings.Cut(rest, " ")
	t, err := time.Parse(time.RFC3339Nano, stamp)
	return t, err == nil
}

// movedWeb reports whether a "placement changed" line lists web-1 as moved
// (slog writes moved=[web-1] or moved="[web-1 ...]").
func movedWeb(line string) bool {
	_, rest, ok := strings.Cut(line, "moved=")
	if !ok {
		return false
	}
	rest = strings.Trim(rest, `"[]`)
	for _, f := range strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == '[' || r == ']' || r == '"' }) {
		if f == "web-1" {
			return true
		}
	}
	return false
}

func earliest(cur, t time.Time) time.Time {
	if cur.IsZero() || t.Before(cur) {
		return t
	}
	return cur
}
