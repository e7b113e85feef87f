package plan

import (
	"reflect"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func live(hosts ...string) map[string]bool {
	out := map[string]bool{}
	for _, h := range hosts {
		out[h] = true
	}
	return out
}

func TestNextDown(t *testing.T) {
	c := parse(t, example)
	earlier := t0.Add(-time.Minute)
	cases := []struct {
		name  string
		live  map[string]bool
		prev  map[string]time.Time
		heard map[string]time.Time
		want  map[string]time.Time
	}{
		{"all up", live("host1", "host2", "host3"), nil, nil, map[string]time.Time{}},
		{"host1 seen down now: down since its lease time before", live("host2", "host3"), nil, nil, map[string]time.Time{"host1": t0.Add(-2 * time.Second)}},
		{"host1 stays down: its clock keeps running", live("host2", "host3"), map[string]time.Time{"host1": earlier}, nil, map[string]time.Time{"host1": earlier}},
		{"host1 back: cleared", live("host1", "host2", "host3"), map[string]time.Time{"host1": earlier}, nil, map[string]time.Time{}},
		{"a host gone from the file is forgotten", live("host1", "host2", "host3"), map[string]time.Time{"host9": earlier}, nil, map[string]time.Time{}},
		{"host1 seen down, last heard earlier than its lease says: since then", live("host2", "host3"), nil,
			map[string]time.Time{"host1": t0.Add(-4 * time.Second)}, map[string]time.Time{"host1": t0.Add(-4 * time.Second)}},
		{"last heard later than the lease says: the lease's time", live("host2", "host3"), nil,
			map[string]time.Time{"host1": t0.Add(-time.Second)}, map[string]time.Time{"host1": t0.Add(-2 * time.Second)}},
		{"a down host's clock moves back to when it was last heard", live("host2", "host3"), map[string]time.Time{"host1": t0.Add(-2 * time.Second)},
			map[string]time.Time{"host1": t0.Add(-3 * time.Second)}, map[string]time.Time{"host1": t0.Add(-3 * time.Second)}},
		{"last heard of a live host changes nothing", live("host1", "host2", "host3"), nil,
			map[string]time.Time{"host2": earlier}, map[string]time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextDown(c, tc.live, tc.prev, t0, 2*time.Second, tc.heard); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("NextDown = %v, want %v", got, tc.want)
			}
		})
	}
}

// The example with a stateful service on host1 and a restricted one.
const rescheduleExample = `
  db:
    command: [./hello]
    host: host1
    volumes: [{name: data, path: /data}]
  pinned:
    command: [./hello]
    host: host1
    reschedule: false
  spread:
    command: [./hello]
    hosts: [host1, host3]
    reschedule_after: 20s
`

func TestReschedule(t *testing.T) {
	c := edited(t, "  web:\n", rescheduleExample[1:]+"  web:\n")
	placed := place(t, c, nil)
	for _, name := range []string{"api-1", "db-1", "pinned-1", "spread-1"} {
		if placed[name].Host != "host1" {
			t.Fatalf("%s placed on %s, the test needs host1", name, placed[name].Host)
		}
	}
	type want struct {
		host, home string
	}
	cases := []struct {
		name     string
		live     map[string]bool
		down     map[string]time.Time
		moved    map[string]want // containers that must move; every other stays
		wantWake time.Time
	}{
		{"all live: nothing moves", live("host1", "host2", "host3"), nil, nil, time.Time{}},
		{"host1 down but never noticed: nothing moves", live("host2", "host3"), nil, nil, time.Time{}},
		{"host1 down 4.9s: nothing yet, wake at 5s", live("host2", "host3"), map[string]time.Time{"host1": t0.Add(-4900 * time.Millisecond)},
			nil, t0.Add(100 * time.Millisecond)},
		{"host1 down 5s: api moves, keeping its home; the volume and reschedule:false stay; spread waits its 20s",
			live("host2", "host3"), map[string]time.Time{"host1": t0.Add(-5 * time.Second)},
			map[string]want{"api-1": {"host2", "host1"}}, t0.Add(15 * time.Second)},
		{"host1 down 20s: spread moves inside its hosts list",
			live("host2", "host3"), map[string]time.Time{"host1": t0.Add(-20 * time.Second)},
			map[string]want{"api-1": {"host2", "host1"}, "spread-1": {"host3", "host1"}}, time.Time{}},
		{"only host1 of the list is usable: spread stays",
			live("host2"), map[string]time.Time{"host1": t0.Add(-time.Minute), "host3": t0.Add(-time.Minute)},
			map[string]want{"api-1": {"host2", "host1"}, "store-1": {"host2", "host3"}, "web-3": {"host2", "host3"}},
			time.Time{}},
		{"no live host at all: nothing moves", live(), map[string]time.Time{"host1": t0.Add(-time.Minute), "host2": t0.Add(-time.Minute), "host3": t0.Add(-time.Minute)},
			nil, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := clone(placed)
			next, wake := Reschedule(c, placed, Liveness{Now: t0, Live: tc.live, DownSince: tc.down})
			if !reflect.DeepEqual(placed, before) {
				t.Fatal("Reschedule modified its input")
			}
			if !wake.Equal(tc.wantWake) {
				t.Errorf("wake = %s, want %s", wake, tc.wantWake)
			}
			for name, old := range placed {
				got := next[name]
				w, moves := tc.moved[name]
				if !moves {
					if got != old {
						t.Errorf("%s changed: %+v -> %+v", name, old, got)
					}
					continue
				}
				if got.Host != w.host || got.Home != w.home || got.IP != old.IP || got.MAC != old.MAC || got.Container != old.Container {
					t.Errorf("%s = %+v, want host %s home %s with address %s and MAC %s kept", name, got, w.host, w.home, old.IP, old.MAC)
				}
			}
			if len(next) != len(placed) {
				t.Errorf("%d containers, want %d", len(next), len(placed))
			}
		})
	}
}

func TestRescheduleSpreadsReplicas(t *testing.T) {
	c := edited(t, "    replicas: 3\n", "    replicas: 3\n    hosts: [host1, host1b]\n",
		"  - {name: host3, subnet: c}\n", "  - {name: host3, subnet: c}\n  - {name: host1b, subnet: a}\n")
	// web's three replicas: web-1 and web-3 on host1, web-2 on host1b.
	prev := place(t, c, nil)
	if prev["web-1"].Host != "host1" || prev["web-3"].Host != "host1" {
		t.Fatalf("placement changed: %v", hostsAndIPs(prev))
	}
	next, _ := Reschedule(c, prev, Liveness{Now: t0, Live: live("host1b", "host2", "host3"), DownSince: map[string]time.Time{"host1": t0.Add(-time.Hour)}})
	for _, name := range []string{"web-1", "web-3"} {
		if next[name].Host != "host1b" {
			t.Errorf("%s on %s: a hosts list limits where replicas may move (host1b)", name, next[name].Host)
		}
	}
	// Without a list, two moved replicas of one service go to different hosts.
	c = parse(t, example)
	prev = place(t, c, nil)
	for name, a := range prev {
		if a.Service == "web" {
			a.Host = "host1"
			prev[name] = a
		}
	}
	next, _ = Reschedule(c, prev, Liveness{Now: t0, Live: live("host2", "host3"), DownSince: map[string]time.Time{"host1": t0.Add(-time.Hour)}})
	hosts := map[string]int{}
	for _, a := range next {
		if a.Service == "web" {
			hosts[a.Host]++
		}
	}
	if hosts["host2"] == 0 || hosts["host3"] == 0 || hosts["host1"] != 0 {
		t.Errorf("web replicas after the move: %v; want them spread over host2 and host3", hosts)
	}
}

// A second move keeps the first home; a move onto home clears it.
func TestRescheduleChain(t *testing.T) {
	c := parse(t, example)
	prev := place(t, c, nil)
	api := prev["api-1"]
	api.Host, api.Home = "host2", "host1"
	prev["api-1"] = api
	next, _ := Reschedule(c, prev, Liveness{Now: t0, Live: live("host3"), DownSince: map[string]time.Time{"host1": t0.Add(-time.Hour), "host2": t0.Add(-time.Hour)}})
	if got := next["api-1"]; got.Host != "host3" || got.Home != "host1" {
		t.Errorf("api-1 after its second move = %+v, want host3 with home host1", got)
	}
	next, _ = Reschedule(c, prev, Liveness{Now: t0, Live: live("host1"), DownSince: map[string]time.Time{"host2": t0.Add(-time.Hour), "host3": t0.Add(-time.Hour)}})
	if got := next["api-1"]; got.Host != "host1" || got.Home != "" {
		t.Errorf("api-1 moved back onto its home = %+v, want host1 with no home", got)
	}
}

// Placement of the unchanged file keeps a moved container where it was
// moved (0 changes); `reschedule: false` sends it home; a file that moves
// the service elsewhere wins.
func TestPlaceKeepsMoved(t *testing.T) {
	c := parse(t, example)
	placed := place(t, c, nil)
	moved, _ := Reschedule(c, placed, Liveness{Now: t0, Live: live("host2", "host3"), DownSince: map[string]time.Time{"host1": t0.Add(-time.Minute)}})
	if moved["api-1"].Host == "host1" {
		t.Fatal("api-1 did not move")
	}
	again := place(t, c, moved)
	if d := Diff(moved, again); d.Count() != 0 || !reflect.DeepEqual(again, moved) {
		t.Errorf("re-placing the unchanged file changed %+v:\n%v\n%v", d, moved, again)
	}

	back := place(t, edited(t, "    ip: 10.10.0.5\n", "    ip: 10.10.0.5\n    reschedule: false\n"), moved)
	if got := back["api-1"]; got.Host != "host1" || got.Home != "" || got.IP != placed["api-1"].IP {
		t.Errorf("with reschedule: false api-1 = %+v, want back on host1 with its address", got)
	}
	if d := Diff(moved, back); !reflect.DeepEqual(d.Moved, []string{"api-1"}) || len(d.Added)+len(d.Removed) != 0 {
		t.Errorf("moving back: changes %+v, want api-1 moved only", d)
	}

	elsewhere := place(t, edited(t, "    host: host1\n", "    host: host3\n"), moved)
	if got := elsewhere["api-1"]; got.Host != "host3" || got.Home != "" {
		t.Errorf("after the file put api on host3: %+v", got)
	}
	same := place(t, edited(t, "    host: host1\n", "    host: "+moved["api-1"].Host+"\n"), moved)
	if got := same["api-1"]; got.Host != moved["api-1"].Host || got.Home != "" {
		t.Errorf("after the file put api where it was moved: %+v, want the home forgotten", got)
	}
}

func clone(m map[string]model.Assignment) map[string]model.Assignment {
	out := map[string]model.Assignment{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
