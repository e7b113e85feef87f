package reach

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestWitness(t *testing.T) {
	hosts := map[string]netip.Addr{"m1": addr("10.0.0.1"), "m2": addr("10.0.0.2"), "m3": addr("10.0.0.3"), "w1": addr("10.0.1.1"), "w2": addr("10.0.1.2")}
	managers := []string{"m1", "m2", "m3"}
	const interval = 100 * time.Millisecond
	// Each case: who sends heartbeats (Heartbeat) or queries (Query) each
	// interval for rounds intervals, then the digest.
	cases := []struct {
		name    string
		beats   map[string]Kind
		rounds  int
		quorate bool
		silent  []string
	}{
		{"everyone heard", map[string]Kind{"m2": Heartbeat, "m3": Heartbeat, "w1": Heartbeat, "w2": Heartbeat}, 10, true, nil},
		{"a host is silent after limit intervals", map[string]Kind{"m2": Heartbeat, "m3": Heartbeat, "w1": Heartbeat}, 10, true, []string{"w2"}},
		{"nobody is silent before limit intervals (and a new witness counts on the managers)", map[string]Kind{}, 2, true, nil},
		{"queries prove nothing", map[string]Kind{"m2": Heartbeat, "m3": Heartbeat, "w1": Heartbeat, "w2": Query}, 10, true, []string{"w2"}},
		{"one other manager heard: still a majority", map[string]Kind{"m2": Heartbeat}, 10, true, []string{"m3", "w1", "w2"}},
		{"no other manager heard: not quorate", map[string]Kind{"w1": Heartbeat, "w2": Heartbeat}, 10, false, []string{"m2", "m3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{time.Unix(1000, 0)}
			w := newWitness("m1", interval, 3, c.now)
			w.SetHosts(hosts, managers)
			for range tc.rounds {
				c.t = c.t.Add(interval)
				for h, kind := range tc.beats {
					w.hear(hosts[h], kind)
				}
			}
			c.t = c.t.Add(interval / 2)
			d := w.digest(7)
			var silent []string
			for _, s := range d.Silent {
				silent = append(silent, s.Host)
				if s.Heard {
					t.Errorf("%s never heard but the digest gives it a last time", s.Host)
				}
			}
			if d.Seq != 7 || d.Quorate != tc.quorate || !reflect.DeepEqual(silent, tc.silent) {
				t.Errorf("digest = seq %d quorate %v silent %v; want 7 %v %v", d.Seq, d.Quorate, silent, tc.quorate, tc.silent)
			}
		})
	}

	t.Run("a host heard then silent has its last time", func(t *testing.T) {
		c := &clock{time.Unix(1000, 0)}
		w := newWitness("m1", interval, 3, c.now)
		w.SetHosts(hosts, managers)
		w.hear(hosts["w1"], Heartbeat)
		c.t = c.t.Add(500 * time.Millisecond)
		d := w.digest(1)
		if i := indexOf(d, "w1"); i < 0 || !d.Silent[i].Heard || d.Silent[i].Ago != 500*time.Millisecond {
			t.Fatalf("digest %+v: want w1 silent, heard 500ms ago", d)
		}
		// Heard again: no longer silent, once the cached digest is old.
		w.hear(hosts["w1"], Heartbeat)
		c.t = c.t.Add(interval / 4)
		if d := w.digest(2); indexOf(d, "w1") >= 0 {
			t.Errorf("w1 heard again but still silent: %+v", d)
		}
	})
	t.Run("heartbeats from strangers are ignored, new hosts timed from their listing", func(t *testing.T) {
		c := &clock{time.Unix(1000, 0)}
		w := newWitness("m1", interval, 3, c.now)
		w.SetHosts(map[string]netip.Addr{"m1": hosts["m1"]}, []string{"m1"})
		w.hear(addr("10.9.9.9"), Heartbeat)
		c.t = c.t.Add(time.Second)
		w.SetHosts(map[string]netip.Addr{"m1": hosts["m1"], "w1": hosts["w1"]}, []string{"m1"})
		if d := w.digest(1); len(d.Silent) != 0 || !d.Quorate {
			t.Errorf("digest %+v: want nobody silent (w1 just listed), quorate (the only manager is the witness)", d)
		}
		c.t = c.t.Add(time.Second)
		if d := w.digest(2); indexOf(d, "w1") < 0 {
			t.Errorf("digest %+v: want w1 silent a second after its listing", d)
		}
		w.SetHosts(map[string]netip.Addr{"m1": hosts["m1"]}, []string{"m1"})
		if d := w.digest(3); len(d.Silent) != 0 {
			t.Errorf("digest %+v: a removed host is still reported", d)
		}
	})
}

func indexOf(d Digest, host string) int {
	for i, s := range d.Silent {
		if s.Host == host {
			return i
		}
	}
	return -1
}
