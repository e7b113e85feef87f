package fault

import (
	"context"
	"os"
	"strings"

	"golang.org/x/sys/unix"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestNFTPlan(t *testing.T) {
	a, b := netip.MustParseAddr("10.10.0.5"), netip.MustParseAddr("10.10.0.7")
	cases := []struct {
		name string
		rec  Record
		want []nftTable
	}{
		{"loss towards peers", Record{ID: "x1", Kind: Loss, Percent: 20, Parts: []Part{{Netns: "n1", Peers: []netip.Addr{a, b}}}},
			[]nftTable{{Netns: "n1", Name: "weft_fault_x1", Rules: []nftRule{
				{Hook: "output", Peer: a, Percent: 20}, {Hook: "output", Peer: b, Percent: 20}}}}},
		{"partition both ways", Record{ID: "x2", Kind: Partition, Parts: []Part{
			{Netns: "h1", Peers: []netip.Addr{b}, Inbound: true}, {Netns: "h2", Peers: []netip.Addr{a}, Inbound: true}}},
			[]nftTable{
				{Netns: "h1", Name: "weft_fault_x2", Rules: []nftRule{{Hook: "output", Peer: b}, {Hook: "input", Peer: b}}},
				{Netns: "h2", Name: "weft_fault_x2", Rules: []nftRule{{Hook: "output", Peer: a}, {Hook: "input", Peer: a}}}}},
		{"latency to everything", Record{ID: "x3", Kind: Latency, Delay: time.Second, Parts: []Part{{Netns: "c", Queue: 9}}},
			[]nftTable{{Netns: "c", Name: "weft_fault_x3", Rules: []nftRule{{Hook: "output", Queue: 9}}}}},
	}
	for _, c := range cases {
		if got := nftPlan(&c.rec); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

func TestTbfParams(t *testing.T) {
	burst, limit := TbfParams(1_250_000) // 10 Mbit/s
	if burst != 50_000 || limit != 62_500+50_000 {
		t.Errorf("10 Mbit/s: burst %d limit %d", burst, limit)
	}
	burst, _ = TbfParams(125_000) // 1 Mbit/s: the floor
	if burst != 16<<10 {
		t.Errorf("1 Mbit/s: burst %d", burst)
	}
}

func TestQueueNumberInRange(t *testing.T) {
	for _, id := range []string{"", "a", "deadbeef", "ffffffff"} {
		if q := QueueNumber(id); q == 0 {
			t.Errorf("queue of %q is 0", id)
		}
	}
}

func TestFillDiskAllocatesAndRemoves(t *testing.T) {
	dir := t.TempDir()
	r := &Record{ID: "f1", Kind: FillDisk, Bytes: 8 << 20, Parts: []Part{{Container: "db-1", Path: dir + "/.weft-fault-f1"}}}
	if err := Apply(context.Background(), Env{}, r); err != nil {
		t.Skipf("cannot fill here: %v", err) // less than 1 GiB free
	}
	if err := Apply(context.Background(), Env{}, r); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(r.Parts[0].Path, &st); err != nil || st.Size != 8<<20 || st.Blocks*512 < 8<<20 {
		t.Fatalf("file %+v %v: want 8 MiB allocated", st, err)
	}
	if err := Remove(context.Background(), Env{}, r); err != nil {
		t.Fatal(err)
	}
	if err := Remove(context.Background(), Env{}, r); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.Parts[0].Path); !os.IsNotExist(err) {
		t.Errorf("file left: %v", err)
	}
	huge := &Record{ID: "f2", Kind: FillDisk, Bytes: 1 << 62, Parts: []Part{{Path: dir + "/.weft-fault-f2"}}}
	if err := Apply(context.Background(), Env{}, huge); err == nil || !strings.Contains(err.Error(), "1 GiB free") {
		t.Errorf("a fill that would leave the machine without space: %v", err)
	}
}

func TestBurnSpinsUntilItsEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var before, after unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &before)
	Burn(ctx, 1)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &after)
	used := time.Duration(after.Utime.Nano() - before.Utime.Nano())
	if used < 30*time.Millisecond { // the machine is shared: ask for a tenth of the wall time
		t.Errorf("burning 300ms used only %s of CPU", used)
	}
}
