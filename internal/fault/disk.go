package fault

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Filling a container's disk allocates one file of the asked size in a
// volume of the container (its persistent disk), named after the fault, and
// never leaves less than MinFreeBytes free on the machine's filesystem:
// the lab's volumes share the machine's disk.

// MinFreeBytes is what a fill always leaves free.
const MinFreeBytes = 1 << 30

func applyFill(_ context.Context, r *Record) error {
	for _, p := range r.Parts {
		if st, err := os.Stat(p.Path); err == nil && st.Size() >= r.Bytes {
			continue
		}
		var fs unix.Statfs_t
		dir := p.Path[:len(p.Path)-len("/.weft-fault-"+r.ID)]
		if err := unix.Statfs(dir, &fs); err != nil {
			return fmt.Errorf("reading free space of %s: %w", dir, err)
		}
		free := int64(fs.Bavail) * int64(fs.Bsize)
		if free-r.Bytes < MinFreeBytes {
			return fmt.Errorf("filling %d bytes in %s would leave less than 1 GiB free on the machine (%d free); ask for less", r.Bytes, dir, free)
		}
		f, err := os.OpenFile(p.Path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("creating %s: %w", p.Path, err)
		}
		err = unix.Fallocate(int(f.Fd()), 0, 0, r.Bytes)
		f.Close()
		if err != nil {
			_ = os.Remove(p.Path)
			return fmt.Errorf("allocating %d bytes in %s: %w", r.Bytes, p.Path, err)
		}
	}
	return nil
}

func removeFill(r *Record) error {
	var errs []error
	for _, p := range r.Parts {
		if err := os.Remove(p.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
