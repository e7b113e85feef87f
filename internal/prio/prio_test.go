package prio

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSetEveryThread runs itself in a child (a nice value cannot be
// lowered back without privilege) and checks that Set reached every
// thread, and that a process it starts inherits the value.
func TestSetEveryThread(t *testing.T) {
	if os.Getenv("PRIO_TEST_CHILD") == "1" {
		if err := Set(7); err != nil {
			t.Fatal(err)
		}
		tids, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		if len(tids) < 2 {
			t.Fatalf("only %d threads: nothing to show", len(tids))
		}
		for _, d := range tids {
			tid, _ := strconv.Atoi(d.Name())
			if n, err := get(tid); err != nil || n != 7 {
				t.Errorf("thread %d: nice %d %v, want 7", tid, n, err)
			}
		}
		out, err := exec.Command("sh", "-c", "cut -d' ' -f19 /proc/self/stat").Output()
		if err != nil || strings.TrimSpace(string(out)) != "7" {
			t.Errorf("a started process has nice %q (%v), want 7", out, err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestSetEveryThread$", "-test.v")
	cmd.Env = append(os.Environ(), "PRIO_TEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestOwnTid(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   int
		ok     bool
	}{
		{"Name:\tweft\nNSpid:\t20025\n", 20025, true},
		{"Name:\tweft\nNSpid:\t20025\t1\n", 1, true}, // a container's init: host, then its own
		{"Name:\tweft\nNSpid:\t20025\t7\t3\n", 3, true},
		{"Name:\tweft\n", 0, false},
		{"NSpid:\n", 0, false},
	} {
		got, ok := ownTid(tc.status)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ownTid(%q) = %d, %v; want %d, %v", tc.status, got, ok, tc.want, tc.ok)
		}
	}
}

// get returns the nice value of thread tid.
func get(tid int) (int, error) {
	// The raw syscall returns 20-nice, so that it is never negative.
	v, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return 0, fmt.Errorf("reading thread %d's nice value: %w", tid, err)
	}
	return 20 - v, nil
}
