package runtime

import (
	"debug/elf"
	"fmt"
	"strings"
)

// The userns stage is this binary run again (through /proc/self/exe)
// after the init has pivoted into the container's root (userns.go), and
// so is the inner helper of `weft exec`. A dynamically linked binary
// needs its ELF interpreter and libc at their paths in that root: a
// binary service's root has the host's /usr and /lib, an image's root has
// only the image. So a container of an image runs in a user namespace
// only when the weft binary is statically linked (CGO_ENABLED=0, as `make
// build` builds it); otherwise it is started without one, by name
// (Runtime.UserNSFor).

// staticBinary reports why the ELF binary at path could not run in a root
// without the host's libraries (nil when it can: no interpreter).
func staticBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("reading the weft binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp := make([]byte, p.Filesz)
		if _, err := p.ReadAt(interp, 0); err != nil {
			return fmt.Errorf("reading the interpreter of %s: %w", path, err)
		}
		return fmt.Errorf("the weft binary %s is dynamically linked (it needs %s), which an image's root does not have; build weft with CGO_ENABLED=0 (make build does)", path, strings.TrimRight(string(interp), "\x00"))
	}
	return nil
}

// UserNSFor reports whether a container with map m (of an image, when
// image is set) is started in its user namespace (nil) or without one
// (why): the kernel must give user namespaces, and for an image the weft
// binary must be static. The agent unpacks an image's files with the
// owners the container will see.
func (r *Runtime) UserNSFor(m IDMap, image bool) error {
	if err := r.userNSWorks(m); err != nil {
		return err
	}
	if !image {
		return nil
	}
	r.staticOnce.Do(func() {
		if err := staticBinary(r.Exe); err != nil {
			r.staticErr = fmt.Errorf("%w: %v", errUserNSUnavailable, err)
		}
	})
	return r.staticErr
}
