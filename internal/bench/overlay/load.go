package overlay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
)

// Ports of the loads inside the namespaces; each namespace is the lab's own,
// so they collide with nothing on the machine.
const (
	iperfPort   = 5201
	streamPort  = 5202
	pingPort    = 5203
	maxPingPong = 2_000_000 // bounds one latency measurement by count as well as time
	streamChunk = 128 << 10
)

// endpoints is one side-by-side pair measured: a client namespace and the
// server's namespace and address.
type endpoints struct {
	name   string // overlay | underlay | reference
	src    string // client's netns
	dst    string // server's netns
	dstIP  string
	srcDev string // the link whose MTU is reported, in src
}

// iperfThroughput runs `iperf3 -c` in src against a one-off `iperf3 -s` in
// dst and returns the receiver's bits per second.
func iperfThroughput(ctx context.Context, e endpoints, streams int, d time.Duration) (float64, error) {
	secs := max(1, int(math.Ceil(d.Seconds())))
	srvCtx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	server, err := labrun.Start(srvCtx, e.dst, "iperf3", "-s", "-1", "-p", strconv.Itoa(iperfPort))
	if err != nil {
		return 0, err
	}
	defer server.Stop()
	if err := labrun.Poll(ctx, 5*time.Second, "iperf3 server in "+e.dst, func() bool {
		return server.Listening(iperfPort) || server.Exited()
	}); err != nil {
		return 0, err
	}
	if server.Exited() {
		return 0, fmt.Errorf("iperf3 server in %s ended early: %w", e.dst, server.Wait(ctx))
	}
	out, err := labrun.Run(srvCtx, e.src, "iperf3", "-c", e.dstIP, "-p", strconv.Itoa(iperfPort),
		"-t", strconv.Itoa(secs), "-P", strconv.Itoa(streams), "-J")
	if err != nil {
		return 0, fmt.Errorf("iperf3 client %s -> %s: %w", e.src, e.dstIP, err)
	}
	return parseIperf([]byte(out))
}

// parseIperf reads the receiver's rate from `iperf3 -J` output.
func parseIperf(out []byte) (float64, error) {
	var result struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &result); err != nil {
		return 0, fmt.Errorf("reading iperf3's JSON: %w", err)
	}
	if result.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", result.Error)
	}
	if result.End.SumReceived.BitsPerSecond <= 0 {
		return 0, errors.New("iperf3 reported no received bytes")
	}
	return result.End.SumReceived.BitsPerSecond, nil
}

// builtinThroughput sends for d over the given number of TCP connections
// from src to a listener in dst, and returns received bits per second.
func builtinThroughput(ctx context.Context, e endpoints, streams int, d time.Duration) (float64, error) {
	l, err := labrun.Listen(e.dst, net.JoinHostPort(e.dstIP, strconv.Itoa(streamPort)))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	var received atomic.Int64
	var readers sync.WaitGroup
	acceptErr := make(chan error, 1)
	go func() {
		for range streams {
			c, err := l.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			readers.Add(1)
			go func() {
				defer readers.Done()
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				received.Add(n)
			}()
		}
		acceptErr <- nil
	}()

	start := time.Now()
	deadline := start.Add(d)
	var senders sync.WaitGroup
	sendErrs := make([]error, streams)
	for i := range streams {
		c, err := labrun.Dial(ctx, e.src, l.Addr().String())
		if err != nil {
			_ = l.Close()
			senders.Wait()
			return 0, err
		}
		senders.Add(1)
		go func() {
			defer senders.Done()
			defer c.Close()
			buf := make([]byte, streamChunk)
			_ = c.SetWriteDeadline(deadline)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if _, err := c.Write(buf); err != nil {
					// A write cut by the deadline is how a sender's time ends.
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						sendErrs[i] = err
					}
					return
				}
			}
		}()
	}
	senders.Wait()
	if err := <-acceptErr; err != nil {
		return 0, fmt.Errorf("accepting load connections in %s: %w", e.dst, err)
	}
	readers.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(sendErrs...); err != nil {
		return 0, fmt.Errorf("sending load %s -> %s: %w", e.src, e.dstIP, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(received.Load()) * 8 / elapsed.Seconds(), nil
}

// pingPong sends one byte and waits for one byte back over one TCP
// connection, for d or maxPingPong round trips, and returns every round
// trip's time.
func pingPong(ctx context.Context, e endpoints, d time.Duration) ([]time.Duration, error) {
	l, err := labrun.Listen(e.dst, net.JoinHostPort(e.dstIP, strconv.Itoa(pingPort)))
	if err != nil {
		return nil, err
	}
	defer l.Close()
	serverDone := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		defer c.Close()
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				serverDone <- nil // the client closed: done
				return
			}
			if _, err := c.Write(b); err != nil {
				serverDone <- err
				return
			}
		}
	}()
	c, err := labrun.Dial(ctx, e.src, l.Addr().String())
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(d)
	_ = c.SetDeadline(deadline.Add(5 * time.Second))
	samples := make([]time.Duration, 0, 1<<16)
	b := []byte{'x'}
	for len(samples) < maxPingPong && ctx.Err() == nil {
		t0 := time.Now()
		if t0.After(deadline) {
			break
		}
		if _, err := c.Write(b); err != nil {
			c.Close()
			return nil, fmt.Errorf("ping-pong %s -> %s: %w", e.src, e.dstIP, err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			c.Close()
			return nil, fmt.Errorf("ping-pong %s -> %s: %w", e.src, e.dstIP, err)
		}
		samples = append(samples, time.Since(t0))
	}
	c.Close()
	if err := <-serverDone; err != nil {
		return nil, fmt.Errorf("ping-pong server in %s: %w", e.dst, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("ping-pong %s -> %s: no round trip in %s", e.src, e.dstIP, d)
	}
	return samples, nil
}
