// Package logrotate keeps weft's log files bounded: a file is renamed to
// NAME.1 (NAME.1 to NAME.2, and so on, the oldest beyond Keep removed) once
// it passes MaxBytes, and writing goes on in a new NAME. It serves the
// container logs (written by container-init, which reads the workload's
// output from a pipe) and the logs of weft's own background processes,
// which write to their stdout and stderr: there the new file is dup'ed
// onto those descriptors, so even a panic's trace lands in it.
package logrotate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Policy bounds one log: at most MaxBytes per file (a file written to by
// others, see RotateIfOver, may pass it until the next check) and Keep
// rotated generations, so at most about (Keep+1)*MaxBytes on disk.
type Policy struct {
	MaxBytes int64
	Keep     int
}

// The defaults, taken by the zero Policy: 10 MiB per file and 3
// generations, so at most about 40 MiB per container and per agent.
const (
	DefaultMaxBytes = 10 << 20
	DefaultKeep     = 3
)

// OrDefault is p, or the defaults when p is the zero Policy.
func (p Policy) OrDefault() Policy {
	if p == (Policy{}) {
		return Policy{MaxBytes: DefaultMaxBytes, Keep: DefaultKeep}
	}
	return p
}

// File is a log file that rotates itself. Safe for concurrent use.
type File struct {
	dir    *os.Root
	name   string
	policy Policy
	dupFDs []int // descriptors each new file is put on (dup3)

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Open opens (appending) or creates name in dir, rotated under p (the
// defaults when zero). The file is also put on this process's descriptors
// dupFDs (e.g. 1 and 2) now and after every rotation.
func Open(dir *os.Root, name string, p Policy, dupFDs ...int) (*File, error) {
	p = p.OrDefault()
	if p.MaxBytes <= 0 || p.Keep < 0 {
		return nil, fmt.Errorf("log rotation of %s: max bytes %d must be positive and generations %d not negative", name, p.MaxBytes, p.Keep)
	}
	l := &File{dir: dir, name: name, policy: p, dupFDs: dupFDs}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *File) open() error {
	f, err := l.dir.OpenFile(l.name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("opening log %s: %w", l.name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("reading the size of log %s: %w", l.name, err)
	}
	for _, fd := range l.dupFDs {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			f.Close()
			return fmt.Errorf("putting log %s on descriptor %d: %w", l.name, fd, err)
		}
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write appends p, rotating whenever the file is full, so no file passes
// the limit: p is split at the last newline that fits (mid-line only for a
// line longer than a whole file).
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	written := 0
	for len(p) > 0 {
		room := l.policy.MaxBytes - l.size
		chunk := p
		if int64(len(chunk)) > room {
			cut := -1
			if room > 0 {
				cut = bytes.LastIndexByte(chunk[:room], '\n')
			}
			switch {
			case cut >= 0:
				chunk = chunk[:cut+1]
			case l.size > 0:
				// Not even one whole line fits: start a new file.
				if err := l.rotate(); err != nil {
					return written, err
				}
				continue
			default:
				chunk = chunk[:room]
			}
		}
		n, err := l.f.Write(chunk)
		l.size += int64(n)
		written += n
		p = p[n:]
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// RotateIfOver rotates when the file, as the kernel sees it (others may
// write to it through descriptors 1 and 2), has passed the limit.
func (l *File) RotateIfOver() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("reading the size of log %s: %w", l.name, err)
	}
	l.size = fi.Size()
	if l.size <= l.policy.MaxBytes {
		return nil
	}
	return l.rotate()
}

// rotate shifts the generations and opens a new file; callers hold mu.
func (l *File) rotate() error {
	if err := Shift(l.dir, l.name, l.policy.Keep); err != nil {
		return err
	}
	return l.open()
}

// Close closes the current file.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// Shift renames name.(keep-1) to name.keep ... name to name.1 in dir,
// dropping name.keep; with keep 0 it removes name.
func Shift(dir *os.Root, name string, keep int) error {
	gen := func(i int) string {
		if i == 0 {
			return name
		}
		return name + "." + strconv.Itoa(i)
	}
	if keep == 0 {
		if err := dir.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing full log %s: %w", name, err)
		}
		return nil
	}
	for i := keep - 1; i >= 0; i-- {
		if err := dir.Rename(gen(i), gen(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotating log %s to %s: %w", gen(i), gen(i+1), err)
		}
	}
	return nil
}

// KeepStderr keeps this process's output bounded when it goes to a file
// (as the lab's agent and supervisor logs do): every interval it rotates
// that file under p, putting the new one on descriptor 2, and on 1 too
// when stdout was the same file. It
// returns at once, doing nothing, when stderr is not a regular file, and
// otherwise when ctx is done.
func KeepStderr(ctx context.Context, p Policy, interval time.Duration) error {
	var st unix.Stat_t
	if err := unix.Fstat(2, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil
	}
	path, err := os.Readlink("/proc/self/fd/2")
	if err != nil || !filepath.IsAbs(path) {
		return nil
	}
	dir, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("opening the directory of log %s: %w", path, err)
	}
	defer dir.Close()
	fds := []int{2}
	var out unix.Stat_t
	if unix.Fstat(1, &out) == nil && out.Dev == st.Dev && out.Ino == st.Ino {
		fds = []int{1, 2}
	}
	l, err := Open(dir, filepath.Base(path), p, fds...)
	if err != nil {
		return err
	}
	defer l.Close()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := l.RotateIfOver(); err != nil {
			fmt.Fprintf(os.Stderr, "weft: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Follow writes the log at path to w and then what is appended to it,
// across rotations (when path is replaced, it finishes the old file and
// goes on with the new one), until ctx is done. flush, if set, is called
// after each write.
func Follow(ctx context.Context, path string, w io.Writer, flush func(), poll time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush != nil {
				flush()
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading log %s: %w", path, err)
		}
		// At the end of this file: if path is now another file, it was
		// rotated; everything of this one has been read.
		if nf, err := os.Open(path); err == nil {
			if rotated(f, nf) {
				f.Close()
				f = nf
				continue
			}
			nf.Close()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

func rotated(old, cur *os.File) bool {
	a, err1 := old.Stat()
	b, err2 := cur.Stat()
	return err1 == nil && err2 == nil && !os.SameFile(a, b)
}
