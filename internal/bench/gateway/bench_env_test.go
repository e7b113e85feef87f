package gateway

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchmarkFromEnv runs the full benchmark until the CLI has
// `weft bench gateway`:
// WEFT_BENCH_GATEWAY_DURATION=10s WEFT_BENCH_GATEWAY_ROUNDS=3 WEFT_BENCH_GATEWAY_CONNECTIONS=64
// WEFT_BENCH_RESULTS=DIR go test -run TestBenchmarkFromEnv -timeout 30m -v ./internal/bench/gateway/
func TestBenchmarkFromEnv(t *testing.T) {
	durationEnv := os.Getenv("WEFT_BENCH_GATEWAY_DURATION")
	if durationEnv == "" {
		t.Skip("set WEFT_BENCH_GATEWAY_DURATION (e.g. 10s) to run the full benchmark")
	}
	weft, hello := binaries(t)
	o := Options{Weft: weft, Hello: hello, ResultsDir: os.Getenv("WEFT_BENCH_RESULTS"),
		Tool: os.Getenv("WEFT_BENCH_GATEWAY_TOOL"), Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	var err error
	if o.Duration, err = time.ParseDuration(durationEnv); err != nil {
		t.Fatalf("WEFT_BENCH_GATEWAY_DURATION=%q: %v", durationEnv, err)
	}
	if v := os.Getenv("WEFT_BENCH_GATEWAY_ROUNDS"); v != "" {
		if o.Rounds, err = strconv.Atoi(v); err != nil {
			t.Fatalf("WEFT_BENCH_GATEWAY_ROUNDS=%q: %v", v, err)
		}
	}
	if v := os.Getenv("WEFT_BENCH_GATEWAY_CONNECTIONS"); v != "" {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("WEFT_BENCH_GATEWAY_CONNECTIONS=%q: %v", v, err)
			}
			o.Connections = append(o.Connections, n)
		}
	}
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
