package firewall

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/nsthread/nstest"
)

// countingKernel counts the transactions of a real kernel.
type countingKernel struct {
	NFT
	applies int
}

func (k *countingKernel) Apply(ctx context.Context, ops []Op) error {
	k.applies++
	return k.NFT.Apply(ctx, ops)
}

// TestNFTSetReadBack writes the firewall into a scratch namespace, reads it
// back as the same shape, writes nothing the second time, counts a VXLAN
// datagram from a non-member (127.0.0.1), keeps that count across a
// membership change, and removes everything when off.
func TestNFTSetReadBack(t *testing.T) {
	ns := nstest.Scratch(t, "weft-fwtest")
	k := &countingKernel{NFT: NFT{NetNS: int(ns)}}
	fw := Firewall{Kernel: k}
	ctx := context.Background()
	c := sampleConfig()
	if err := fw.Set(ctx, c); err != nil {
		t.Fatalf("Set: %v", err)
	}
	have, err := k.Read(ctx)
	if err != nil || len(have) != 2 {
		t.Fatalf("Read = %d tables, %v", len(have), err)
	}
	for i, tb := range Build(c) {
		if !have[i].Shape.Equal(tb.Shape()) {
			t.Errorf("%s table read back as\n%+v\nwant\n%+v", tb.Family, have[i].Shape, tb.Shape())
		}
	}
	if err := fw.Set(ctx, c); err != nil || k.applies != 1 {
		t.Fatalf("second Set: %v, %d transactions; want none more", err, k.applies)
	}

	err = nsthread.Do(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		conn, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", c.VXLANPort))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Write([]byte("not from a member"))
		return err
	})
	if err != nil {
		t.Fatalf("sending from 127.0.0.1: %v", err)
	}
	if st := fw.Status(ctx); st.Dropped[CounterVXLAN].Packets != 1 {
		t.Fatalf("status = %+v, want one VXLAN drop", st)
	}
	c.Members = c.Members[:2]
	if err := fw.Set(ctx, c); err != nil || k.applies != 2 {
		t.Fatalf("Set after a host left: %v (%d transactions)", err, k.applies)
	}
	if st := fw.Status(ctx); st.Dropped[CounterVXLAN].Packets != 1 {
		t.Errorf("after the rewrite: %+v, want the drop still counted", st)
	}
	if err := fw.Set(ctx, Config{}); err != nil {
		t.Fatalf("Set(off): %v", err)
	}
	if have, err := k.Read(ctx); err != nil || len(have) != 0 {
		t.Errorf("after off: %d tables, %v", len(have), err)
	}
}
