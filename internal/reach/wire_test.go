package reach

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHeartbeatWire(t *testing.T) {
	for _, kind := range []Kind{Heartbeat, Query} {
		seq, k, ok := decodeHeartbeat(encodeHeartbeat(42, kind))
		if !ok || seq != 42 || k != kind {
			t.Errorf("decode(encode(42, %d)) = %d, %d, %v", kind, seq, k, ok)
		}
	}
	old := append([]byte("wrch"), make([]byte, 8)...) // an earlier version's echo probe
	for _, b := range [][]byte{nil, []byte("hello"), old, append(encodeHeartbeat(7, Heartbeat), 0), encodeHeartbeat(7, 9)} {
		if _, _, ok := decodeHeartbeat(b); ok {
			t.Errorf("decodeHeartbeat(%q) accepted a stray datagram", b)
		}
	}
}

func TestDigestWire(t *testing.T) {
	cases := []Digest{
		{Seq: 1},
		{Seq: 2, Quorate: true},
		{Seq: 3, Quorate: true, Silent: []Silence{{Host: "host4", Ago: 1200 * time.Millisecond, Heard: true}, {Host: "host9"}}},
	}
	for _, d := range cases {
		got, ok := decodeDigest(encodeDigest(d))
		if !ok || !reflect.DeepEqual(got, d) {
			t.Errorf("decodeDigest(encodeDigest(%+v)) = %+v, %v", d, got, ok)
		}
	}
	t.Run("names that do not fit are left out", func(t *testing.T) {
		d := Digest{Silent: []Silence{{Host: strings.Repeat("x", 256)}, {Host: ""}, {Host: "ok"}}}
		got, ok := decodeDigest(encodeDigest(d))
		if !ok || len(got.Silent) != 1 || got.Silent[0].Host != "ok" {
			t.Errorf("got %+v, %v; want only host ok", got, ok)
		}
	})
	t.Run("a digest stays in one datagram", func(t *testing.T) {
		var d Digest
		for range 1000 {
			d.Silent = append(d.Silent, Silence{Host: strings.Repeat("h", 200), Heard: true})
		}
		b := encodeDigest(d)
		if len(b) > maxDigest {
			t.Errorf("digest of %d bytes, more than %d", len(b), maxDigest)
		}
		if _, ok := decodeDigest(b); !ok {
			t.Errorf("the shortened digest does not decode")
		}
	})
	good := encodeDigest(cases[2])
	for _, b := range [][]byte{nil, good[:14], good[:len(good)-1], append(good, 0), encodeHeartbeat(1, Heartbeat)} {
		if _, ok := decodeDigest(b); ok {
			t.Errorf("decodeDigest(%q) accepted a broken digest", b)
		}
	}
}
