package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/syncbuf"
)

// startSleeper starts a child that runs until killed and returns it as a
// process the supervisor can follow (a pidfd needs no privilege for one's
// own child).
func startSleeper(t *testing.T) (*exec.Cmd, *process) {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sleep: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatalf("opening the pidfd of sleep: %v", err)
	}
	return cmd, &process{pid: cmd.Process.Pid, pidfd: pidfd, started: time.Now()}
}

// writeWorkloadRecord replaces the workload record in dir as container-init does.
func writeWorkloadRecord(t *testing.T, dir string, st workloadState) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatalf("opening %s: %v", dir, err)
	}
	defer root.Close()
	if err := writeJSONAtomicIn(root, workloadFile, st); err != nil {
		t.Fatalf("writing the workload record: %v", err)
	}
}

func TestFollowFallsBackToPollingAtInotifyLimits(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		polls    bool // follows the record without inotify
		wantFail bool // follow fails at once
	}{
		{name: "too many instances", err: unix.EMFILE, polls: true},
		{name: "too many watches", err: unix.ENOSPC, polls: true},
		{name: "directory unreadable", err: unix.EACCES, wantFail: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncbuf.Buffer{}
			opened := 0
			r := &Runtime{
				StateRoot: t.TempDir(),
				Log:       slog.New(slog.NewTextHandler(logs, nil)),
				watch: func(dir string) (int, error) {
					opened++
					return -1, fmt.Errorf("watching %s: %w", dir, tc.err)
				},
			}
			// Two containers follow their records through the same Runtime:
			// the fallback is logged once.
			for i := range 2 {
				dir := t.TempDir()
				cmd, proc := startSleeper(t)
				defer proc.close()
				events := make(chan Event, 16)
				done := make(chan error, 1)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go func() {
					done <- r.follow(ctx, dir, proc, &workloadView{}, func(e Event) { events <- e })
				}()
				if tc.wantFail {
					if err := <-done; !errors.Is(err, tc.err) {
						t.Fatalf("follow returned %v, want the watch's error %v", err, tc.err)
					}
					return
				}
				// Records written after follow began are seen, each once.
				for pid := 100; pid < 103; pid++ {
					writeWorkloadRecord(t, dir, workloadState{State: model.StateRunning, Pid: pid + i*10, Restarts: pid - 100})
					select {
					case e := <-events:
						if e.State != model.StateRunning || e.Pid != pid+i*10 {
							t.Fatalf("container %d: event %+v, want running pid %d", i, e, pid+i*10)
						}
					case <-time.After(30 * time.Second):
						t.Fatalf("container %d: no event for the record of pid %d", i, pid+i*10)
					}
				}
				_ = cmd.Process.Kill()
				if err := <-done; err != nil {
					t.Fatalf("container %d: follow returned %v after the process exited, want nil", i, err)
				}
				select {
				case e := <-events:
					t.Fatalf("container %d: unexpected event %+v", i, e)
				default:
				}
			}
			if opened != 2 {
				t.Errorf("inotify was tried %d times, want once per container (2)", opened)
			}
			if n := strings.Count(logs.String(), "inotify limit reached"); n != 1 {
				t.Errorf("the fallback was logged %d times, want once:\n%s", n, logs.String())
			}
		})
	}
}

func TestWatchDirReportsReplacedRecords(t *testing.T) {
	dir := t.TempDir()
	ino, err := watchDir(dir)
	if err != nil {
		t.Fatalf("watchDir: %v", err)
	}
	defer unix.Close(ino)
	writeWorkloadRecord(t, dir, workloadState{State: model.StateRunning, Pid: 1})
	fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 10_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n != 1 {
			t.Fatalf("poll on the inotify descriptor: n=%d err=%v, want it readable", n, err)
		}
		return
	}
}

func TestFileStampChangesOnReplace(t *testing.T) {
	dir := t.TempDir()
	var s fileStamp
	if s.changed(dir) {
		t.Errorf("no record yet, but the stamp changed")
	}
	writeWorkloadRecord(t, dir, workloadState{State: model.StateRunning, Pid: 1})
	if !s.changed(dir) {
		t.Errorf("record written, but the stamp did not change")
	}
	if s.changed(dir) {
		t.Errorf("nothing written, but the stamp changed")
	}
	// Same content, same size: the rename gives a new inode.
	writeWorkloadRecord(t, dir, workloadState{State: model.StateRunning, Pid: 1})
	if !s.changed(dir) {
		t.Errorf("record replaced with the same content, but the stamp did not change")
	}
}
