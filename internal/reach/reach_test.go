package reach

import (
	"testing"
	"time"
)

func TestTrack(t *testing.T) {
	// Each step: "p" sends a probe, "a" answers the latest, "o" answers an
	// older one (late), then the expected state after the step.
	cases := []struct {
		name  string
		steps string
		want  []bool // unreachable after each step, limit 3
	}{
		{"answered probes never miss", "papapa", []bool{false, false, false, false, false, false}},
		{"three unanswered probes make a peer unreachable at the fourth", "pppp", []bool{false, false, false, true}},
		{"one answer makes it reachable again", "ppppa", []bool{false, false, false, true, false}},
		{"a late answer to an older probe does not count", "ppppop", []bool{false, false, false, true, true, true}},
		{"misses must be in a row", "pppapppp", []bool{false, false, false, false, false, false, false, true}},
	}
	t.Run("heard is the time of the last counted answer", func(t *testing.T) {
		var tr track
		t0 := time.Unix(100, 0)
		tr.probe()
		if !tr.answer(1, t0) {
			t.Errorf("the answer to the latest heartbeat did not count")
		}
		tr.probe()
		if tr.answer(1, t0.Add(time.Second)) { // late: not counted
			t.Errorf("a late answer counted")
		}
		if !tr.heard.Equal(t0) {
			t.Errorf("heard = %v, want %v", tr.heard, t0)
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tr track
			var old uint64
			for i, step := range tc.steps {
				switch step {
				case 'p':
					old = tr.seq
					tr.probe()
				case 'a':
					_ = tr.answer(tr.seq, time.Now())
				case 'o':
					_ = tr.answer(old, time.Now())
				}
				if got := tr.unreachable(3); got != tc.want[i] {
					t.Fatalf("after step %d (%c) of %q: unreachable %v, want %v", i, step, tc.steps, got, tc.want[i])
				}
			}
		})
	}
}
