package fault

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The delay stage: this kernel has no netem, so added latency is a
// user-space stage. Packets matched by the fault's NFQUEUE rule are handed
// to this process over nfnetlink_queue; it holds each one for the delay and
// then lets it go (verdict ACCEPT). The queue is FIFO and the delay
// constant, so order is kept. Speaking nfnetlink_queue directly over
// mdlayher/netlink (already in the module graph through google/nftables)
// avoids a dependency the module proxy here does not serve (go-nfqueue);
// the protocol is the kernel's documented uapi (linux/netfilter/nfnetlink_queue.h).

const (
	nfnlSubsysQueue = 3
	nfqnlMsgPacket  = 0
	nfqnlMsgVerdict = 1
	nfqnlMsgConfig  = 2

	nfqaPacketHdr  = 1
	nfqaVerdictHdr = 2
	nfqaCfgCmd     = 1
	nfqaCfgParams  = 2
	nfqaCfgMaxLen  = 3

	nfqnlCfgCmdBind = 1
	nfqnlCopyMeta   = 1
	nfAccept        = 1
	queueMaxLen     = 8192
)

// DelayStage holds every packet of queue for delay inside the named
// namespace until ctx ends. When it stops, the rule's bypass flag lets
// packets through undelayed.
func DelayStage(ctx context.Context, nsName string, queue uint16, delay time.Duration) error {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", nsName, err)
	}
	defer ns.Close()
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(ns)})
	if err != nil {
		return fmt.Errorf("opening nfnetlink in %s: %w", nsName, err)
	}
	defer conn.Close()
	_ = conn.SetOption(netlink.NoENOBUFS, true)
	_ = conn.SetReadBuffer(8 << 20)

	cmd := []byte{nfqnlCfgCmdBind, 0, 0, unix.AF_INET}
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, 0xffff)
	params[4] = nfqnlCopyMeta
	maxLen := binary.BigEndian.AppendUint32(nil, queueMaxLen)
	for _, attrs := range [][]netlink.Attribute{
		{{Type: nfqaCfgCmd, Data: cmd}},
		{{Type: nfqaCfgParams, Data: params}},
		{{Type: nfqaCfgMaxLen, Data: maxLen}},
	} {
		if err := configure(conn, queue, attrs); err != nil {
			return fmt.Errorf("configuring queue %d in %s: %w", queue, nsName, err)
		}
	}

	type held struct {
		id  uint32
		due time.Time
	}
	line := make(chan held, queueMaxLen)
	errc := make(chan error, 2)
	go func() {
		for {
			msgs, err := conn.Receive()
			if err != nil {
				errc <- err
				return
			}
			now := time.Now()
			for _, m := range msgs {
				if m.Header.Type != netlink.HeaderType(nfnlSubsysQueue<<8|nfqnlMsgPacket) || len(m.Data) < 4 {
					continue
				}
				ad, err := netlink.NewAttributeDecoder(m.Data[4:])
				if err != nil {
					continue
				}
				for ad.Next() {
					if ad.Type() == nfqaPacketHdr && len(ad.Bytes()) >= 4 {
						line <- held{id: binary.BigEndian.Uint32(ad.Bytes()[:4]), due: now.Add(delay)}
					}
				}
			}
		}
	}()
	go func() {
		for {
			var h held
			select {
			case <-ctx.Done():
				errc <- nil
				return
			case h = <-line:
			}
			if wait := time.Until(h.due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					errc <- nil
					return
				case <-t.C:
				}
			}
			if err := verdict(conn, queue, h.id); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}

func nfgen(queue uint16) []byte {
	b := []byte{unix.AF_UNSPEC, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], queue)
	return b
}

func configure(conn *netlink.Conn, queue uint16, attrs []netlink.Attribute) error {
	body, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return err
	}
	_, err = conn.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysQueue<<8 | nfqnlMsgConfig), Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(nfgen(queue), body...),
	})
	if errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("queue %d already has a listener: %w", queue, err)
	}
	return err
}

func verdict(conn *netlink.Conn, queue uint16, id uint32) error {
	hdr := make([]byte, 8)
	binary.BigEndian.PutUint32(hdr[0:], nfAccept)
	binary.BigEndian.PutUint32(hdr[4:], id)
	body, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: nfqaVerdictHdr, Data: hdr}})
	if err != nil {
		return err
	}
	_, err = conn.Send(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysQueue<<8 | nfqnlMsgVerdict), Flags: netlink.Request},
		Data:   append(nfgen(queue), body...),
	})
	return err
}
