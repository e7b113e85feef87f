package reach

import (
	"maps"
	"testing"
	"time"
)

func TestVerdict(t *testing.T) {
	t0 := time.Unix(1000, 0)
	up := func(silent ...Silence) witnessView {
		return witnessView{reachable: true, heard: t0, digest: &Digest{Quorate: true, Silent: silent}, digestAt: t0}
	}
	away := witnessView{heard: t0.Add(-time.Second)}
	lonely := func(silent ...Silence) witnessView { // reachable, not quorate
		v := up(silent...)
		v.digest.Quorate = false
		return v
	}
	quiet := func(host string, ago time.Duration) Silence { return Silence{Host: host, Ago: ago, Heard: true} }
	never := func(host string) Silence { return Silence{Host: host} }
	cases := []struct {
		name      string
		self      string
		witnesses map[string]witnessView
		down      []string
		since     map[string]time.Time
	}{
		{"everyone heard", "w1", map[string]witnessView{"m1": up(), "m2": up(), "m3": up()}, nil, nil},
		{"a worker every witness finds silent", "w1",
			map[string]witnessView{"m1": up(quiet("w2", time.Second)), "m2": up(quiet("w2", 2*time.Second)), "m3": up(quiet("w2", time.Second))},
			[]string{"w2"}, map[string]time.Time{"w2": t0.Add(-time.Second)}},
		{"one witness still hears it: reachable", "w1",
			map[string]witnessView{"m1": up(quiet("w2", time.Second)), "m2": up(), "m3": up(quiet("w2", time.Second))}, nil, nil},
		{"a cut manager (the etcd leader's host) is unreachable directly; the others judge the workers", "w1",
			map[string]witnessView{"m1": up(quiet("w2", time.Second)), "m2": away, "m3": up(never("w2"))},
			[]string{"m2", "w2"}, map[string]time.Time{"m2": t0.Add(-time.Second), "w2": t0.Add(-time.Second)}},
		{"a manager's own view: the cut manager only", "m1",
			map[string]witnessView{"m1": up(quiet("m2", time.Second)), "m2": away, "m3": up(quiet("m2", time.Second))},
			[]string{"m2"}, map[string]time.Time{"m2": t0.Add(-time.Second)}},
		{"a manager that finds a manager silent does not make it unreachable: it answers", "w1",
			map[string]witnessView{"m1": up(quiet("m2", time.Second)), "m2": up(), "m3": up(quiet("m2", time.Second))}, nil, nil},
		{"a worker that lost the managers reports nobody", "w1",
			map[string]witnessView{"m1": away, "m2": away, "m3": up(quiet("w2", time.Second))}, nil, nil},
		{"a manager cut off (only itself reached) reports nobody", "m1",
			map[string]witnessView{"m1": up(quiet("m2", time.Second), quiet("m3", time.Second), quiet("w1", time.Second)), "m2": away, "m3": away}, nil, nil},
		{"the own witness out of reach (resolver restarting) still counts for the majority", "m1",
			map[string]witnessView{"m1": away, "m2": up(quiet("w2", time.Second)), "m3": away},
			[]string{"m3", "w2"}, map[string]time.Time{"m3": t0.Add(-time.Second), "w2": t0.Add(-time.Second)}},
		{"a witness that is not quorate has no say", "w1",
			map[string]witnessView{"m1": lonely(quiet("w2", time.Second), quiet("w3", time.Second)), "m2": up(quiet("w3", time.Second)), "m3": up(quiet("w3", time.Second))},
			[]string{"w3"}, map[string]time.Time{"w3": t0.Add(-time.Second)}},
		{"no quorate witness: no worker is unreachable", "w1",
			map[string]witnessView{"m1": lonely(quiet("w2", time.Second)), "m2": lonely(quiet("w2", time.Second)), "m3": up()}, nil, nil},
		{"witnesses without a digest yet have no say", "w1",
			map[string]witnessView{"m1": {reachable: true}, "m2": {reachable: true}, "m3": {reachable: true}}, nil, nil},
		{"self is never unreachable", "w2",
			map[string]witnessView{"m1": up(quiet("w2", time.Second)), "m2": up(quiet("w2", time.Second)), "m3": up(quiet("w2", time.Second))}, nil, nil},
		{"never heard: unreachable without a last time", "w1",
			map[string]witnessView{"m1": up(never("w2")), "m2": up(never("w2")), "m3": up(never("w2"))}, []string{"w2"}, nil},
		{"no managers: nothing", "w1", nil, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			down, since := verdict(tc.self, tc.witnesses)
			want := map[string]bool{}
			for _, h := range tc.down {
				want[h] = true
			}
			if !maps.Equal(down, want) {
				t.Errorf("down = %v, want %v", down, want)
			}
			if len(since) != 0 || len(tc.since) != 0 {
				if !maps.EqualFunc(since, tc.since, time.Time.Equal) {
					t.Errorf("since = %v, want %v", since, tc.since)
				}
			}
		})
	}
}
