package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// staleUnpack is how old a temporary unpack directory must be before GC
// takes it for the leftover of a crash rather than an unpack under way.
const staleUnpack = time.Hour

// GC removes every unpacked image whose digest is not in keep, the
// references that resolved to it, and leftovers of interrupted unpacks. It
// returns the digests removed. The caller passes every image a container
// of this host may still run: an image is removed from under nobody.
func (s *Store) GC(keep map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(s.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing images in %s: %w", s.Root, err)
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleUnpack {
				if err := os.RemoveAll(filepath.Join(s.Root, e.Name())); err != nil {
					return removed, fmt.Errorf("removing the interrupted unpack %s: %w", e.Name(), err)
				}
			}
			continue
		}
		digest := v1.Hash{Algorithm: "sha256", Hex: e.Name()}.String()
		if e.Name() == refsDir || keep[digest] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.Root, e.Name())); err != nil {
			return removed, fmt.Errorf("removing unused image %s: %w", digest, err)
		}
		removed = append(removed, digest)
	}
	if len(removed) == 0 {
		return nil, nil
	}
	refs, err := os.ReadDir(filepath.Join(s.Root, refsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return removed, fmt.Errorf("listing image references: %w", err)
	}
	for _, r := range refs {
		p := filepath.Join(s.Root, refsDir, r.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if !keep[strings.TrimSpace(string(b))] {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("removing the reference %s: %w", r.Name(), err)
			}
		}
	}
	return removed, nil
}
