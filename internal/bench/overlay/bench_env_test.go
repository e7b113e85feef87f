package overlay

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestBenchmarkFromEnv runs the full benchmark until the CLI has
// `weft bench overlay`:
// WEFT_BENCH_OVERLAY_DURATION=10s WEFT_BENCH_OVERLAY_ROUNDS=3 WEFT_BENCH_RESULTS=DIR
// go test -run TestBenchmarkFromEnv -timeout 30m -v ./internal/bench/overlay/
func TestBenchmarkFromEnv(t *testing.T) {
	durationEnv := os.Getenv("WEFT_BENCH_OVERLAY_DURATION")
	if durationEnv == "" {
		t.Skip("set WEFT_BENCH_OVERLAY_DURATION (e.g. 10s) to run the full benchmark")
	}
	o := Options{Weft: weftBinary(t), ResultsDir: os.Getenv("WEFT_BENCH_RESULTS"), Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	var err error
	if o.Duration, err = time.ParseDuration(durationEnv); err != nil {
		t.Fatalf("WEFT_BENCH_OVERLAY_DURATION=%q: %v", durationEnv, err)
	}
	if v := os.Getenv("WEFT_BENCH_OVERLAY_ROUNDS"); v != "" {
		if o.Rounds, err = strconv.Atoi(v); err != nil {
			t.Fatalf("WEFT_BENCH_OVERLAY_ROUNDS=%q: %v", v, err)
		}
	}
	o.Tool = os.Getenv("WEFT_BENCH_OVERLAY_TOOL")
	if o.ResultsDir == "" {
		o.ResultsDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	r, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteTable(os.Stdout); err != nil {
		t.Fatal(err)
	}
	csvPath, jsonPath, err := r.Save(o.ResultsDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s and %s", csvPath, jsonPath)
}
