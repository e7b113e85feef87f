package fault

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// A bandwidth limit is a tbf qdisc at the root of a link, with a handle of
// weft's own so removal deletes only it.

// TbfHandle is the major handle of weft's tbf qdiscs (0xf417:).
const TbfHandle = 0xf417

// tbfLatency bounds how long a packet may wait in the bucket's queue.
const tbfLatencySeconds = 0.05

// TbfParams are the tbf settings for a rate: burst at least one 40 ms slice
// of the rate (and 16 KiB), a queue of 50 ms of the rate plus the burst.
func TbfParams(rateBytes uint64) (burst, limit uint32) {
	b := max(rateBytes/25, 16<<10)
	l := uint64(float64(rateBytes)*tbfLatencySeconds) + b
	return uint32(b), uint32(l)
}

func handleIn(nsName string) (*netlink.Handle, func(), error) {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return nil, nil, fmt.Errorf("opening namespace %s: %w", nsName, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, nil, fmt.Errorf("opening netlink in %s: %w", nsName, err)
	}
	return h, func() { h.Close(); ns.Close() }, nil
}

func applyBandwidth(ctx context.Context, r *Record) error {
	return replaceRootQdiscs(ctx, r, fmt.Sprintf("tbf %d B/s", r.RateBytes), func(link netlink.Link) netlink.Qdisc {
		burst, limit := r.BurstBytes, uint32(0)
		if burst == 0 {
			burst, limit = TbfParams(r.RateBytes)
		} else {
			_, limit = TbfParams(r.RateBytes)
		}
		return &netlink.Tbf{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(TbfHandle, 0), Parent: netlink.HANDLE_ROOT},
			Rate:       r.RateBytes,
			Limit:      limit,
			Buffer:     netlink.Xmittime(r.RateBytes, burst),
		}
	})
}

// replaceRootQdiscs sets the qdisc made by build (what, in errors) at the
// root of every part's link.
func replaceRootQdiscs(ctx context.Context, r *Record, what string, build func(netlink.Link) netlink.Qdisc) error {
	for _, p := range r.Parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, done, err := handleIn(p.Netns)
		if err != nil {
			return err
		}
		link, err := h.LinkByName(p.Dev)
		if err != nil {
			done()
			return fmt.Errorf("link %s in %s: %w", p.Dev, p.Netns, err)
		}
		err = h.QdiscReplace(build(link))
		done()
		if err != nil {
			return fmt.Errorf("setting %s on %s in %s: %w", what, p.Dev, p.Netns, err)
		}
	}
	return nil
}

func removeBandwidth(ctx context.Context, r *Record) error {
	var errs []error
	for _, p := range r.Parts {
		errs = append(errs, removeQdisc(p.Netns, p.Dev, TbfHandle))
	}
	return errors.Join(errs...)
}

// removeQdisc deletes weft's root qdisc of the given major handle on dev,
// when there is one.
func removeQdisc(nsName, dev string, major uint16) error {
	h, done, err := handleIn(nsName)
	if err != nil {
		if _, statErr := netns.GetFromName(nsName); statErr != nil {
			return nil // namespace gone: nothing left
		}
		return err
	}
	defer done()
	link, err := h.LinkByName(dev)
	if err != nil {
		return nil // link gone
	}
	qs, err := h.QdiscList(link)
	if err != nil {
		return fmt.Errorf("listing qdiscs of %s in %s: %w", dev, nsName, err)
	}
	for _, q := range qs {
		if q.Attrs().Handle == netlink.MakeHandle(major, 0) && q.Attrs().Parent == netlink.HANDLE_ROOT {
			if err := h.QdiscDel(q); err != nil {
				return fmt.Errorf("deleting qdisc %x: on %s in %s: %w", major, dev, nsName, err)
			}
		}
	}
	return nil
}

// HasTbf reports whether weft's tbf sits on dev (tests, diagnostics).
func HasTbf(nsName, dev string) (bool, error) {
	h, done, err := handleIn(nsName)
	if err != nil {
		return false, err
	}
	defer done()
	link, err := h.LinkByName(dev)
	if err != nil {
		return false, err
	}
	qs, err := h.QdiscList(link)
	if err != nil {
		return false, err
	}
	for _, q := range qs {
		if q.Attrs().Handle == netlink.MakeHandle(TbfHandle, 0) {
			return true, nil
		}
	}
	return false, nil
}
