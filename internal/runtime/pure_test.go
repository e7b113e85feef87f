package runtime

import (
	"slices"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

func TestBackoffDoublesCapsAndResets(t *testing.T) {
	var b Backoff
	var got []time.Duration
	for range 9 {
		got = append(got, b.Delay(time.Second))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if d := b.Delay(10 * time.Second); d != 100*time.Millisecond {
		t.Errorf("after a 10s run the delay is %s, want 100ms", d)
	}
	if d := b.Delay(0); d != 200*time.Millisecond {
		t.Errorf("after the reset the delay grows again: got %s, want 200ms", d)
	}
}

func TestShouldRestart(t *testing.T) {
	cases := []struct {
		policy string
		code   int
		want   bool
	}{
		{spec.RestartAlways, 0, true},
		{spec.RestartAlways, 1, true},
		{spec.RestartOnFailure, 0, false},
		{spec.RestartOnFailure, 2, true},
		{spec.RestartOnFailure, -1, true},
		{spec.RestartNever, 1, false},
		{spec.RestartNever, -1, false},
	}
	for _, c := range cases {
		if got := shouldRestart(c.policy, c.code); got != c.want {
			t.Errorf("shouldRestart(%s, %d) = %v, want %v", c.policy, c.code, got, c.want)
		}
	}
}

func TestParseStartTime(t *testing.T) {
	line := "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615\n"
	got, err := parseStartTime([]byte(line))
	if err != nil || got != 987654 {
		t.Errorf("parseStartTime = %d, %v; want 987654", got, err)
	}
	if _, err := parseStartTime([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("short stat line parsed without error")
	}
}

func TestHash(t *testing.T) {
	base := Config{
		Cluster: "c", Host: "h", Container: "web-1", Service: "web",
		Command: []string{"srv", "-p", "80"}, Env: map[string]string{"A": "1", "B": "2"},
		Netns: "weft.c.c.web-1", ResolvConf: "nameserver 10.10.0.1\n", Hosts: "10.10.0.5 web\n",
		Volumes: []Mount{{HostPath: "/v", Path: "/data"}},
	}
	same := base
	same.Env = map[string]string{"B": "2", "A": "1"}
	same.ResolvConf = "nameserver 10.10.0.9\n"
	same.Hosts = "10.10.0.6 web\n"
	same.Restart = spec.RestartNever
	same.Workdir = "/"
	if base.Hash() != same.Hash() {
		t.Error("hash changed with env order, file contents, restart policy or the default workdir")
	}
	changes := map[string]func(*Config){
		"command":  func(c *Config) { c.Command = []string{"srv", "-p", "81"} },
		"env":      func(c *Config) { c.Env = map[string]string{"A": "1"} },
		"user":     func(c *Config) { c.User = "nobody" },
		"workdir":  func(c *Config) { c.Workdir = "/srv" },
		"netns":    func(c *Config) { c.Netns = "other" },
		"hostname": func(c *Config) { c.Hostname = "web" },
		"volumes":  func(c *Config) { c.Volumes = nil },
		"no hosts": func(c *Config) { c.Hosts = "" },
	}
	for name, change := range changes {
		c := base
		change(&c)
		if c.Hash() == base.Hash() {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Cluster: "c", Host: "h", Container: "x", Command: []string{"true"}, Netns: "n"}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	bad := map[string]func(*Config){
		"command": func(c *Config) { c.Command = nil },
		"netns":   func(c *Config) { c.Netns = "" },
		"restart": func(c *Config) { c.Restart = "sometimes" },
		"workdir": func(c *Config) { c.Workdir = "srv" },
		"volume":  func(c *Config) { c.Volumes = []Mount{{HostPath: "v", Path: "/data"}} },
	}
	for name, change := range bad {
		c := ok
		change(&c)
		if err := c.validate(); err == nil {
			t.Errorf("config with bad %s validated", name)
		}
	}
}

func TestResolveUser(t *testing.T) {
	cases := []struct {
		spec     string
		uid, gid int
	}{
		{"nobody", 65534, 65534},
		{"65534", 65534, 65534},
		{"root", 0, 0},
		{"nobody:0", 65534, 0},
		{"0:nogroup", 0, 65534},
		{"12345", 12345, 12345}, // not in /etc/passwd
	}
	for _, c := range cases {
		cred, err := resolveUser(c.spec)
		if err != nil {
			t.Errorf("resolveUser(%q): %v", c.spec, err)
			continue
		}
		if cred.uid != c.uid || cred.gid != c.gid || !slices.Contains(cred.groups, c.gid) {
			t.Errorf("resolveUser(%q) = %+v, want uid %d gid %d", c.spec, cred, c.uid, c.gid)
		}
	}
	for _, bad := range []string{"no-such-user-weft", "nobody:no-such-group-weft"} {
		if _, err := resolveUser(bad); err == nil {
			t.Errorf("resolveUser(%q) succeeded", bad)
		}
	}
}

func TestCommandEnv(t *testing.T) {
	got := commandEnv(map[string]string{"PATH": "/opt/bin", "X": "1"}, "/home/u", "web-1")
	want := []string{"HOME=/home/u", "HOSTNAME=web-1", "PATH=/opt/bin", "X=1"}
	if !slices.Equal(got, want) {
		t.Errorf("commandEnv = %v, want %v", got, want)
	}
}

func TestBackoffCustomDelays(t *testing.T) {
	b := Backoff{First: 100 * time.Millisecond, Max: time.Second, ResetAfter: 5 * time.Second}
	var got []time.Duration
	for range 6 {
		got = append(got, b.Delay(time.Second))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if d := b.Delay(5 * time.Second); d != 100*time.Millisecond {
		t.Errorf("after a healthy run the delay is %s, want 100ms", d)
	}
}

func TestWorkloadViewEvents(t *testing.T) {
	running := func(pid, restarts, exits, lastPid, lastExit int) workloadState {
		return workloadState{State: model.StateRunning, Pid: pid, Restarts: restarts, Exits: exits, LastPid: lastPid, LastExit: lastExit}
	}
	backoff := func(restarts, exits, lastPid, lastExit int) workloadState {
		return workloadState{State: model.StateBackoff, Restarts: restarts, Exits: exits, LastPid: lastPid, LastExit: lastExit}
	}
	type ev struct {
		state              string
		pid, code, restart int
		adopted            bool
	}
	cases := []struct {
		name     string
		adopting bool
		states   []workloadState
		want     []ev
	}{
		{"fresh start", false, []workloadState{running(10, 0, 0, 0, -1)}, []ev{{model.StateRunning, 10, -1, 0, false}}},
		{"same state twice reports once", false, []workloadState{running(10, 0, 0, 0, -1), running(10, 0, 0, 0, -1)},
			[]ev{{model.StateRunning, 10, -1, 0, false}}},
		{"crash seen in backoff", false, []workloadState{running(10, 0, 0, 0, -1), backoff(0, 1, 10, 137), running(11, 1, 1, 10, 137)},
			[]ev{{model.StateRunning, 10, -1, 0, false}, {model.StateBackoff, 10, 137, 0, false}, {model.StateRunning, 11, -1, 1, false}}},
		{"backoff missed", false, []workloadState{running(10, 0, 0, 0, -1), running(11, 1, 1, 10, 137)},
			[]ev{{model.StateRunning, 10, -1, 0, false}, {model.StateBackoff, 10, 137, 0, false}, {model.StateRunning, 11, -1, 1, false}}},
		{"adopting skips old exits", true, []workloadState{running(12, 2, 2, 11, 1)}, []ev{{model.StateRunning, 12, -1, 2, true}}},
		{"adopting in backoff", true, []workloadState{backoff(2, 2, 11, 1), running(12, 3, 2, 11, 1)},
			[]ev{{model.StateBackoff, 11, 1, 2, true}, {model.StateRunning, 12, -1, 3, false}}},
		{"final exit is left to Supervise", false, []workloadState{running(10, 0, 0, 0, -1), {State: model.StateExited, Exits: 1, LastPid: 10, LastExit: 0}},
			[]ev{{model.StateRunning, 10, -1, 0, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			v := &workloadView{adopting: tc.adopting}
			var got []ev
			emit := func(e Event) { got = append(got, ev{e.State, e.Pid, e.ExitCode, e.Restarts, e.Adopted}) }
			v.update(dir, emit) // no record yet: nothing
			for _, st := range tc.states {
				if err := writeWorkload(dir, st); err != nil {
					t.Fatal(err)
				}
				v.update(dir, emit)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("events %+v, want %+v", got, tc.want)
			}
		})
	}
}
