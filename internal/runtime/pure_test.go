package runtime

import (
	"slices"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/spec"
)

func TestBackoffDoublesCapsAndResets(t *testing.T) {
	var b backoff
	var got []time.Duration
	for range 9 {
		got = append(got, b.delay(time.Second))
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if d := b.delay(10 * time.Second); d != 100*time.Millisecond {
		t.Errorf("after a 10s run the delay is %s, want 100ms", d)
	}
	if d := b.delay(0); d != 200*time.Millisecond {
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
