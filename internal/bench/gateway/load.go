package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
)

// maxRequests bounds one built-in measurement by count as well as by time.
const maxRequests = 5_000_000

// result is one measurement of one proxy.
type result struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64
	Errors   int64         // failed requests and non-2xx/3xx answers
	CPU      time.Duration // CPU time the proxy used during the measurement
}

// wrkLoad runs wrk inside the load namespace against url, for d rounded up
// to whole seconds.
func wrkLoad(ctx context.Context, loadNetns, url string, connections int, d time.Duration) (result, error) {
	threads := min(connections, 2)
	secs := max(1, int(math.Ceil(d.Seconds()))) // wrk takes whole seconds
	runCtx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	out, err := labrun.Run(runCtx, loadNetns, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(connections),
		"-d", fmt.Sprintf("%ds", secs), "--latency", url)
	if err != nil {
		return result{}, fmt.Errorf("wrk against %s from %s: %w", url, loadNetns, err)
	}
	return parseWrk(out)
}

// parseWrk reads wrk's --latency report.
func parseWrk(out string) (result, error) {
	var r result
	var haveP50, haveP99, haveRPS, haveCount bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "50%":
			r.P50, haveP50 = parseWrkDuration(f[1]), true
		case len(f) == 2 && f[0] == "99%":
			r.P99, haveP99 = parseWrkDuration(f[1]), true
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("reading wrk's %q: %w", sc.Text(), err)
			}
			r.RPS, haveRPS = v, true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			v, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("reading wrk's %q: %w", sc.Text(), err)
			}
			r.Requests, haveCount = v, true
		case len(f) == 5 && f[0] == "Non-2xx":
			v, _ := strconv.ParseInt(f[4], 10, 64)
			r.Errors += v
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			// "Socket errors: connect 0, read 0, write 0, timeout 0"
			for i := 2; i+1 < len(f); i += 2 {
				v, _ := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				r.Errors += v
			}
		}
	}
	if !haveP50 || !haveP99 || !haveRPS || !haveCount {
		return r, fmt.Errorf("wrk's output lacks the latency distribution or the request rate: %q", out)
	}
	if r.P50 <= 0 || r.P99 <= 0 {
		return r, fmt.Errorf("wrk's latencies are unreadable: %q", out)
	}
	return r, nil
}

// parseWrkDuration reads wrk's "812.00us", "1.23ms", "2.01s", "1.00m".
func parseWrkDuration(s string) time.Duration {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0
			}
			return time.Duration(v * float64(u.unit))
		}
	}
	return 0
}

// builtinLoad is a closed-loop HTTP load: each connection sends its next GET
// when the previous answer is read, over keep-alive, for d.
func builtinLoad(ctx context.Context, loadNetns, url string, connections int, d time.Duration) (result, error) {
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return labrun.Dial(ctx, loadNetns, addr)
		},
		MaxIdleConns:        connections,
		MaxIdleConnsPerHost: connections,
		MaxConnsPerHost:     connections,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	loadCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	var mu sync.Mutex
	var latencies []time.Duration
	var errs int64
	var requests int64
	var firstErr error
	perWorker := maxRequests / connections
	var wg sync.WaitGroup
	start := time.Now()
	for range connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := make([]time.Duration, 0, 4096)
			var ownErrs int64
			var ownFirst error
			for len(own) < perWorker && loadCtx.Err() == nil {
				t0 := time.Now()
				err := getOnce(loadCtx, client, url)
				if loadCtx.Err() != nil {
					break // cut by the end of the run: counts as neither
				}
				if err != nil {
					if ownFirst == nil {
						ownFirst = err
					}
					ownErrs++
					continue
				}
				own = append(own, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, own...)
			errs += ownErrs
			if firstErr == nil {
				firstErr = ownFirst
			}
			requests += int64(len(own)) + ownErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	if len(latencies) == 0 {
		return result{}, fmt.Errorf("no request to %s from %s succeeded in %s (%d failed, the first with: %v)", url, loadNetns, d, errs, firstErr)
	}
	return result{
		RPS:      float64(len(latencies)) / elapsed.Seconds(),
		P50:      labrun.Percentile(latencies, 50),
		P99:      labrun.Percentile(latencies, 99),
		Requests: requests,
		Errors:   errs,
	}, nil
}

// getOnce GETs url and reads the whole answer so the connection is reused.
func getOnce(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, copyErr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if copyErr != nil {
		return fmt.Errorf("reading the answer: %w", copyErr)
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("answer %s", resp.Status)
	}
	return nil
}

// waitServing polls url from the load namespace until it answers 200.
func waitServing(ctx context.Context, loadNetns, url string, timeout time.Duration) error {
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return labrun.Dial(ctx, loadNetns, addr)
		},
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Second}
	var last error
	err := labrun.Poll(ctx, timeout, url+" to answer 200", func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			last = err
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("status %s", resp.Status)
			return false
		}
		return true
	})
	if err != nil && last != nil {
		return errors.Join(err, fmt.Errorf("last answer: %w", last))
	}
	return err
}
