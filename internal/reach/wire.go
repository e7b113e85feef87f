package reach

import (
	"encoding/binary"
	"math"
	"time"
)

// Kind says what a heartbeat's sender is. Only a host's resolver speaks for
// its host: a witness counts its heartbeats as the host alive. An agent
// that only wants the digests (the placement leader's timing of down
// hosts) sends queries, which are answered but prove nothing.
type Kind byte

const (
	// Heartbeat is a host's resolver: the host is alive.
	Heartbeat Kind = 1
	// Query asks for the digest only.
	Query Kind = 2
)

// magics start every heartbeat and digest, so that stray datagrams (and
// the echo probes of earlier versions) are ignored.
var (
	heartbeatMagic = [4]byte{'w', 'r', 'h', 'b'}
	digestMagic    = [4]byte{'w', 'r', 'd', 'g'}
)

const heartbeatLen = 4 + 8 + 1

func encodeHeartbeat(seq uint64, kind Kind) []byte {
	b := binary.BigEndian.AppendUint64(heartbeatMagic[:], seq)
	return append(b, byte(kind))
}

func decodeHeartbeat(b []byte) (seq uint64, kind Kind, ok bool) {
	if len(b) != heartbeatLen || [4]byte(b[:4]) != heartbeatMagic {
		return 0, 0, false
	}
	kind = Kind(b[12])
	if kind != Heartbeat && kind != Query {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b[4:12]), kind, true
}

// Silence is one host a witness has not heard from for MissLimit
// intervals: how long ago it last heard it, when it ever did.
type Silence struct {
	Host  string
	Ago   time.Duration
	Heard bool // false: not heard since the witness started
}

// Digest is a witness's answer to a heartbeat: the heartbeat's sequence
// number, whether the witness hears a majority of the managers (only then
// does its word count), and the hosts it finds silent.
type Digest struct {
	Seq     uint64
	Quorate bool
	Silent  []Silence
}

// maxDigest keeps a digest in one datagram; hosts beyond it are left out
// (a witness that finds hundreds of hosts silent is itself cut off).
const maxDigest = 60000

const neverHeard = math.MaxUint32

// encodeDigest is magic, seq, flags (1: quorate), count, then per silent
// host its name's length and name and the milliseconds since it was heard
// (neverHeard when it was not).
func encodeDigest(d Digest) []byte {
	b := binary.BigEndian.AppendUint64(digestMagic[:], d.Seq)
	var flags byte
	if d.Quorate {
		flags = 1
	}
	b = append(b, flags, 0, 0)
	n := 0
	for _, s := range d.Silent {
		if len(s.Host) == 0 || len(s.Host) > 255 || len(b)+1+len(s.Host)+4 > maxDigest {
			continue
		}
		b = append(b, byte(len(s.Host)))
		b = append(b, s.Host...)
		ago := uint32(neverHeard)
		if s.Heard {
			ago = uint32(min(max(s.Ago.Milliseconds(), 0), neverHeard-1))
		}
		b = binary.BigEndian.AppendUint32(b, ago)
		n++
	}
	binary.BigEndian.PutUint16(b[13:15], uint16(n))
	return b
}

func decodeDigest(b []byte) (Digest, bool) {
	if len(b) < 15 || [4]byte(b[:4]) != digestMagic || b[12]&^1 != 0 {
		return Digest{}, false
	}
	d := Digest{Seq: binary.BigEndian.Uint64(b[4:12]), Quorate: b[12] == 1}
	n := int(binary.BigEndian.Uint16(b[13:15]))
	rest := b[15:]
	for range n {
		if len(rest) < 1 || rest[0] == 0 || len(rest) < 1+int(rest[0])+4 {
			return Digest{}, false
		}
		l := int(rest[0])
		s := Silence{Host: string(rest[1 : 1+l])}
		if ago := binary.BigEndian.Uint32(rest[1+l:]); ago != neverHeard {
			s.Ago, s.Heard = time.Duration(ago)*time.Millisecond, true
		}
		d.Silent = append(d.Silent, s)
		rest = rest[1+l+4:]
	}
	if len(rest) != 0 {
		return Digest{}, false
	}
	return d, true
}
