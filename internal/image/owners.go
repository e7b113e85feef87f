package image

import (
	"fmt"
	"os"
	"strconv"
)

// Owners is how an image's file owners are written on the host: container
// id n (uid or gid, as the image's layers give it) becomes host id
// HostBase+n, for n below Size, so that a container whose user namespace
// has the same map (internal/runtime.IDMap) sees the image's own owners
// (root-owned /etc, an image USER's files owned by that user) and not
// nobody. The zero value writes the image's ids as they are, for a
// container without a user namespace.
//
// Each Owners of an image is its own unpacked tree (Image.RootFS, named
// by variantDir): the files of one tree cannot show two owners.
type Owners struct {
	HostBase uint32
	Size     uint32
}

// shifted reports whether o moves ids at all.
func (o Owners) shifted() bool { return o.Size > 0 }

// host returns the host uid and gid of an entry owned by uid:gid in the
// image. An id the map cannot hold is an error: written as it is, it
// would be a host id outside the container's range (nobody inside, and
// perhaps a real user of the host).
func (o Owners) host(uid, gid int) (int, int, error) {
	if !o.shifted() {
		return uid, gid, nil
	}
	for _, id := range []int{uid, gid} {
		if id < 0 || uint64(id) >= uint64(o.Size) {
			return 0, 0, fmt.Errorf("owned by %d:%d, beyond the %d ids a container's user namespace maps; rebuild the image with ids below %d, or run the service with `userns: false`", uid, gid, o.Size, o.Size)
		}
	}
	return int(o.HostBase) + uid, int(o.HostBase) + gid, nil
}

// variantDir is the directory, beside the image's config, of its tree
// with owners o: "rootfs" for the image's own ids, "rootfs-<host base>"
// for a shifted one.
func (o Owners) variantDir() string {
	if !o.shifted() {
		return rootfsDir
	}
	return rootfsDir + "-" + strconv.FormatUint(uint64(o.HostBase), 10)
}

// lchowner sets the owner of an entry under the unpacked image's root
// without following a symlink: *os.Root on a host; a recorder in tests
// (chown to other ids needs root).
type lchowner interface {
	Lchown(name string, uid, gid int) error
}

var _ lchowner = (*os.Root)(nil)
