package nsthread

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/vishvananda/netns"
)

func inode(t *testing.T) string {
	t.Helper()
	target, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func TestNewNamedAndDo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	name := fmt.Sprintf("nsthread-test-%04x", rand.IntN(0xffff))
	t.Cleanup(func() { _ = netns.DeleteNamed(name) })
	before := inode(t)

	ns, err := NewNamed(name)
	if err != nil {
		t.Fatalf("NewNamed: %v", err)
	}
	defer ns.Close()
	if _, err := NewNamed(name); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second NewNamed = %v, want os.ErrExist", err)
	}

	var inside string
	if err := DoNamed(name, func() error {
		b, err := os.Readlink("/proc/thread-self/ns/net")
		inside = b
		return err
	}); err != nil {
		t.Fatalf("DoNamed: %v", err)
	}
	if inside == before {
		t.Fatalf("fn ran in the caller's namespace %s, not in %s", before, name)
	}
	want := errors.New("from fn")
	if err := Do(ns, func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do returned %v, want fn's error", err)
	}
	if after := inode(t); after != before {
		t.Fatalf("the caller's thread moved from %s to %s", before, after)
	}
	if err := DoNamed(name+"-missing", func() error { return nil }); err == nil {
		t.Fatalf("DoNamed of a missing namespace should fail")
	}
}
