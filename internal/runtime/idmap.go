package runtime

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The host ids a container's user namespace maps to. Container ids
// 0..IDMapSize-1 (root, the system users, every regular user) become host
// ids HostBase..HostBase+IDMapSize-1, one range per cluster:
//
//	HostBase = idMapFirst + (FNV-1a(cluster) mod idMapSlots) * IDMapSize
//
// idMapFirst is 0x70000000 (1879048192), the start of the range systemd's
// UID allocation (docs: UIDS-GIDS.md) leaves unused between the
// systemd-nspawn container ranges (524288..1879048191) and its foreign
// range (0x7FFE0000..); ids there are no login user's, no system or
// dynamic user's and no nspawn container's, and they stay below 2^31, so
// tools that read ids as signed 32-bit numbers see them right. Two
// clusters of one machine get different ranges unless their names hash to
// the same slot (1 in idMapSlots); even then their containers share no
// files (each sees only its own volumes) and no processes (PID namespaces).
const (
	// IDMapSize is how many ids a container has: uid and gid 0..65535.
	IDMapSize  = 65536
	idMapFirst = 0x70000000
	// idMapSlots ranges fit between idMapFirst and systemd's foreign
	// range at 0x7FFE0000.
	idMapSlots = (0x7FFE0000 - idMapFirst) / IDMapSize
)

// IDMap is a container's user namespace: container uid and gid n are host
// id HostBase+n, for n below Size. The zero value is no user namespace.
type IDMap struct {
	HostBase uint32 `json:"host_base"`
	Size     uint32 `json:"size"`
}

// ClusterIDMap is the id map of every container of cluster.
func ClusterIDMap(cluster string) IDMap {
	h := fnv.New32a()
	h.Write([]byte(cluster))
	return IDMap{HostBase: idMapFirst + (h.Sum32()%idMapSlots)*IDMapSize, Size: IDMapSize}
}

// identityIDs is the host's own ids, as a container without a user
// namespace has them (the part a shift moves).
var identityIDs = IDMap{HostBase: 0, Size: IDMapSize}

// On reports whether m is a user namespace at all.
func (m IDMap) On() bool { return m.Size > 0 }

// String is the map as /proc/<pid>/uid_map shows it.
func (m IDMap) String() string { return fmt.Sprintf("0 %d %d", m.HostBase, m.Size) }

// contains reports whether host id is in m's range.
func (m IDMap) contains(id uint32) bool {
	return id >= m.HostBase && id-m.HostBase < m.Size
}

// shift moves host id from the range of from to the same place in the
// range of to; ids outside from's range are kept.
func shift(id uint32, from, to IDMap) (uint32, bool) {
	if !from.contains(id) || id-from.HostBase >= to.Size {
		return id, false
	}
	return id - from.HostBase + to.HostBase, true
}

// ToHost is the host id of container id n (false when n is not mapped).
func (m IDMap) ToHost(n uint32) (uint32, bool) {
	if n >= m.Size {
		return 0, false
	}
	return m.HostBase + n, true
}

// FromHost is the container id of host id h (false when h is not mapped).
func (m IDMap) FromHost(h uint32) (uint32, bool) {
	if !m.contains(h) {
		return 0, false
	}
	return h - m.HostBase, true
}

// parseIDMap reads a /proc/<pid>/uid_map. A process without a user
// namespace of its own shows "0 0 4294967295" and gets the zero IDMap; a
// map of another shape than weft's single range is an error.
func parseIDMap(s string) (IDMap, error) {
	var inside, host, size uint64
	if n, err := fmt.Sscanf(s, "%d %d %d", &inside, &host, &size); n != 3 || err != nil {
		return IDMap{}, fmt.Errorf("id map %q is not one line of three numbers", s)
	}
	if inside == 0 && host == 0 && size == 4294967295 {
		return IDMap{}, nil
	}
	if inside != 0 || size == 0 || size > IDMapSize || host+size > 1<<32 {
		return IDMap{}, fmt.Errorf("id map %q is not weft's (0 <host base> <at most %d>)", s, IDMapSize)
	}
	return IDMap{HostBase: uint32(host), Size: uint32(size)}, nil
}

// OwnVolume makes the volume dir owned in the ids a container of cluster
// with map m uses: when dir's owner is outside them, its tree is shifted
// (ShiftOwnership) from the cluster's map to the host's ids (m off) or
// the other way (m on). A volume made before user namespaces, or used by
// a service that turned its user namespace off, thus follows the setting.
func OwnVolume(dir string, m IDMap, cluster string) error {
	need, err := NeedsShift(dir, m)
	if err != nil || !need {
		return err
	}
	if m.On() {
		return ShiftOwnership(dir, identityIDs, m)
	}
	return ShiftOwnership(dir, ClusterIDMap(cluster), identityIDs)
}

// HostIDs are the host uid and gid of container ids uid and gid under m
// (the same ids without a user namespace).
func HostIDs(m IDMap, uid, gid int) (int, int, error) {
	if !m.On() {
		return uid, gid, nil
	}
	hu, ok1 := m.ToHost(uint32(uid))
	hg, ok2 := m.ToHost(uint32(gid))
	if uid < 0 || gid < 0 || !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("uid %d or gid %d is not below %d, the ids a container has", uid, gid, m.Size)
	}
	return int(hu), int(hg), nil
}

// ShiftOwnership makes the tree under dir (a volume) owned as a container
// with user namespace to sees it: every file whose uid or gid is in
// from's range moves to the same place in to's range (from identityIDs to
// a cluster's map when the user namespace is turned on, back when it is
// turned off); other ids are kept. dir itself is changed last, so a shift
// cut short is done again next time: callers call it only when dir's owner
// is not in to's range (see NeedsShift). Symlinks are changed, not
// followed.
func ShiftOwnership(dir string, from, to IDMap) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		return shiftOne(path, from, to)
	})
	if err != nil {
		return fmt.Errorf("moving the owners of volume %s from ids %d.. to %d..: %w", dir, from.HostBase, to.HostBase, err)
	}
	if err := shiftOne(dir, from, to); err != nil {
		return fmt.Errorf("moving the owner of volume %s from ids %d.. to %d..: %w", dir, from.HostBase, to.HostBase, err)
	}
	return nil
}

func shiftOne(path string, from, to IDMap) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile
		}
		return err
	}
	uid, su := shift(st.Uid, from, to)
	gid, sg := shift(st.Gid, from, to)
	if !su && !sg {
		return nil
	}
	if err := os.Lchown(path, int(uid), int(gid)); err != nil {
		return err
	}
	// chown clears set-user-ID and set-group-ID bits; put them back
	// (symlinks have no mode of their own).
	if st.Mode&(syscall.S_ISUID|syscall.S_ISGID) != 0 && st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		if err := os.Chmod(path, fs.FileMode(st.Mode&0o7777).Perm()|unixModeBits(st.Mode)); err != nil {
			return err
		}
	}
	return nil
}

// unixModeBits turns the set-id and sticky bits of a raw mode into fs.FileMode's.
func unixModeBits(mode uint32) fs.FileMode {
	var m fs.FileMode
	if mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// NeedsShift reports whether the volume dir must be shifted to m (its
// owner is not in m's range); m's zero value means the host's own ids.
func NeedsShift(dir string, m IDMap) (bool, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return false, fmt.Errorf("reading the owner of volume %s: %w", dir, err)
	}
	return !hostRange(m).contains(st.Uid), nil
}

// hostRange is the host ids a container with map m uses: its range, or
// the host's own low ids without a user namespace.
func hostRange(m IDMap) IDMap {
	if !m.On() {
		return identityIDs
	}
	return m
}
