package logrotate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/syncbuf"
)

func openRoot(t *testing.T) (string, *os.Root) {
	t.Helper()
	dir := t.TempDir()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return dir, r
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestWriteRotatesAndKeepsGenerations(t *testing.T) {
	dir, root := openRoot(t)
	l, err := Open(root, "out.log", Policy{MaxBytes: 10, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, line := range []string{"aaaa\n", "bbbb\n", "cccc\n", "dddd\n", "eeee\n", "ffff\n", "gggggggggggggggg\n", "h\n"} {
		if _, err := l.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	// 10 bytes a file, split at newlines; a line longer than a file is
	// split mid-line.
	want := map[string]string{
		"out.log":   "gggggg\nh\n",
		"out.log.1": "gggggggggg",
		"out.log.2": "eeee\nffff\n",
	}
	for name, content := range want {
		if got := read(t, filepath.Join(dir, name)); got != content {
			t.Errorf("%s = %q, want %q", name, got, content)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.log.3")); err == nil {
		t.Error("a third generation was kept")
	}
}

func TestRotateIfOverSeesOtherWriters(t *testing.T) {
	dir, root := openRoot(t)
	l, err := Open(root, "agent.log", Policy{MaxBytes: 8, Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := l.RotateIfOver(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.WriteString("0123456789\n"); err != nil {
		t.Fatal(err)
	}
	if err := l.RotateIfOver(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "agent.log.1")); got != "0123456789\n" {
		t.Errorf("agent.log.1 = %q", got)
	}
	if got := read(t, filepath.Join(dir, "agent.log")); got != "" {
		t.Errorf("agent.log = %q, want a fresh file", got)
	}
}

func TestKeepZeroRemoves(t *testing.T) {
	dir, root := openRoot(t)
	l, err := Open(root, "x.log", Policy{MaxBytes: 4, Keep: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write([]byte("1234"))
	l.Write([]byte("56"))
	if got := read(t, filepath.Join(dir, "x.log")); got != "56" {
		t.Errorf("x.log = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.log.1")); err == nil {
		t.Error("keep 0 kept a generation")
	}
}

func TestBadPolicyRefused(t *testing.T) {
	_, root := openRoot(t)
	if _, err := Open(root, "x", Policy{MaxBytes: 0, Keep: 1}); err == nil {
		t.Error("max 0 accepted")
	}
}

func TestFollowAcrossRotation(t *testing.T) {
	dir, root := openRoot(t)
	l, err := Open(root, "out.log", Policy{MaxBytes: 12, Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write([]byte("one\n"))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, filepath.Join(dir, "out.log"), &out, nil, 5*time.Millisecond) }()
	// The follower has the file open once it has read what was there.
	deadline := time.Now().Add(10 * time.Second)
	for out.String() != "one\n" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Like tail -F, a follower more than one rotation behind loses the
	// generation in between; each line is waited for.
	want := "one\n"
	for _, line := range []string{"two\n", "three\n", "four\n", "five\n"} {
		l.Write([]byte(line))
		want += line
		deadline = time.Now().Add(10 * time.Second)
		for out.String() != want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want {
		t.Errorf("followed %q, want %q", got, want)
	}
	if !strings.Contains(read(t, filepath.Join(dir, "out.log.1")), "three") {
		t.Error("the log did not rotate during the test")
	}
}

// TestKeepStderr runs this test binary as a child whose stderr is a file,
// as the lab's agent runs: its own output is rotated, and what it writes
// after a rotation lands in the new file.
func TestKeepStderr(t *testing.T) {
	if os.Getenv("LOGROTATE_CHILD") == "1" {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- KeepStderr(ctx, Policy{MaxBytes: 100, Keep: 1}, 5*time.Millisecond) }()
		for i := range 40 {
			fmt.Fprintf(os.Stderr, "child line %02d\n", i)
			time.Sleep(2 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stdout, "KeepStderr:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "child done")
		os.Exit(0)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "agent.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeepStderr$")
	cmd.Env = append(os.Environ(), "LOGROTATE_CHILD=1")
	cmd.Stderr = logFile
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	cur := read(t, logPath)
	if !strings.HasSuffix(cur, "child done\n") {
		t.Errorf("the current log does not end with the child's last line: %q", cur)
	}
	old := read(t, logPath+".1")
	if !strings.Contains(old, "child line") {
		t.Errorf("no rotated generation: %q", old)
	}
	if _, err := os.Stat(logPath + ".2"); err == nil {
		t.Error("more generations than Keep")
	}
}
