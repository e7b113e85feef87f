package store

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tcpUserTimeout is how long data sent to a member may stay unacknowledged
// before the kernel drops the connection. A member cut off without a reset
// (its host's link down, the host frozen) otherwise keeps the connection
// "up" for TCP's full retransmission timeout (~15 min), and after a heal
// TCP's retransmission backoff delays the first packet by up to two
// minutes; gRPC's own keepalive cannot ping more often than every 10s. With
// calls and pings flowing every few hundred milliseconds, a dead path is
// noticed within this time and gRPC reconnects (within its 1s backoff) as
// soon as the member is reachable.
const tcpUserTimeout = 3 * time.Second

// dialMember opens a TCP connection to a member with TCP_USER_TIMEOUT set.
// It dials from the caller's network namespace, like the default dialer.
func dialMember(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(tcpUserTimeout/time.Millisecond))
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("setting TCP_USER_TIMEOUT: %w", serr)
		}
		return nil
	}}
	return d.DialContext(ctx, "tcp", addr)
}
