// Package nstest gives tests a throwaway named network namespace.
package nstest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/nsthread"
)

// Scratch creates a named network namespace "<prefix>-<n>" and deletes it
// when the test ends; it skips the test when not run as root.
func Scratch(t testing.TB, prefix string) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e9)
	ns, err := nsthread.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Close()
		_ = netns.DeleteNamed(name)
	})
	return ns
}
