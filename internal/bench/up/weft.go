package up

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/weft-dev/weft/internal/api"
)

// weftCLI runs the weft binary the way a user would.
type weftCLI struct {
	bin       string
	stateRoot string // "" for weft's default
	log       *slog.Logger
}

// upResult is the part of `weft up --json` the benchmark reads.
type upResult struct {
	Healthy  int     `json:"healthy"`
	Expected int     `json:"expected"`
	Seconds  float64 `json:"seconds"`
}

func (w weftCLI) run(ctx context.Context, args ...string) ([]byte, error) {
	if w.stateRoot != "" {
		args = append(args, "--state-root", w.stateRoot)
	}
	cmd := exec.CommandContext(ctx, w.bin, args...)
	// Interrupted, weft stops where it is; the caller's `weft down` removes
	// whatever it had built.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	w.log.Debug("running weft", "args", args)
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", w.bin, strings.Join(args, " "), err, tail(stderr.String()+stdout.String(), 1500))
	}
	return stdout.Bytes(), nil
}

// up runs `weft up --json` and returns its result and wall time.
func (w weftCLI) up(ctx context.Context, file string, timeout time.Duration) (upResult, time.Duration, error) {
	start := time.Now()
	out, err := w.run(ctx, "up", "--json", "--timeout", timeout.String(), "-f", file)
	took := time.Since(start)
	if err != nil {
		return upResult{}, took, err
	}
	var res upResult
	if err := json.Unmarshal(out, &res); err != nil {
		return upResult{}, took, fmt.Errorf("reading the output of weft up --json: %w: %s", err, tail(string(out), 500))
	}
	if res.Healthy != res.Expected {
		return res, took, fmt.Errorf("weft up returned with %d of %d containers healthy", res.Healthy, res.Expected)
	}
	return res, took, nil
}

func (w weftCLI) status(ctx context.Context, cluster string) (api.Status, error) {
	out, err := w.run(ctx, "status", "--json", "--cluster", cluster)
	if err != nil {
		return api.Status{}, err
	}
	var st api.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return api.Status{}, fmt.Errorf("reading the output of weft status --json: %w", err)
	}
	return st, nil
}

func (w weftCLI) down(ctx context.Context, cluster string) (time.Duration, error) {
	start := time.Now()
	_, err := w.run(ctx, "down", "--cluster", cluster)
	return time.Since(start), err
}

// tail keeps the last n bytes of s, where error messages end.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
