package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A Supervise wakes on inotify events of the container's state directory,
// where the init replaces its workload record. inotify instances and watches
// are limited per user (fs.inotify.max_user_instances, often 128, and
// max_user_watches), and in the lab every host's agent runs as the same
// user: a cluster of 50 hosts with 4 containers each needs 200 instances.
// When the kernel refuses one, the supervisor polls the record instead: it
// checks the record's file stamp every pollInterval and reads the record
// only when the stamp changed.

// watchDir opens an inotify instance that reports the workload record being
// replaced in dir, and returns its descriptor (non-blocking).
func watchDir(dir string) (int, error) {
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("creating an inotify instance for %s: %w", dir, err)
	}
	if _, err := unix.InotifyAddWatch(ino, dir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		_ = unix.Close(ino)
		return -1, fmt.Errorf("watching %s with inotify: %w", dir, err)
	}
	return ino, nil
}

// watchExhausted reports whether err means the kernel's inotify limits are
// reached (too many instances: EMFILE; too many watches: ENOSPC), which
// polling works around, rather than a fault in the directory itself.
func watchExhausted(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENOSPC)
}

// openWatch returns the inotify descriptor for dir, or -1 when the
// supervisor must poll because inotify's limits are reached. The first
// fallback of this Runtime is logged; later ones are not, as every further
// container of the host falls back for the same reason.
func (r *Runtime) openWatch(dir string) (int, error) {
	watch := r.watch
	if watch == nil {
		watch = watchDir
	}
	ino, err := watch(dir)
	if err == nil {
		return ino, nil
	}
	if !watchExhausted(err) {
		return -1, err
	}
	if !r.pollingNoted.Swap(true) {
		r.logger().Warn("inotify limit reached: polling container state records instead (raise fs.inotify.max_user_instances or max_user_watches to avoid it)",
			"dir", dir, "every", pollInterval, "err", err)
	}
	return -1, nil
}

// fileStamp identifies one version of a file replaced by rename: its inode,
// size and modification time.
type fileStamp struct {
	ino   uint64
	size  int64
	mtime time.Time
	ok    bool
}

// stampOf returns the stamp of the workload record in dir (zero when it
// does not exist).
func stampOf(dir string) fileStamp {
	fi, err := os.Stat(filepath.Join(dir, workloadFile))
	if err != nil {
		return fileStamp{}
	}
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime(), ok: true}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

// changed reports whether the workload record in dir differs from the one
// last seen, and remembers the current one.
func (s *fileStamp) changed(dir string) bool {
	now := stampOf(dir)
	if now == *s {
		return false
	}
	*s = now
	return true
}
