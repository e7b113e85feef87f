package up

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchmarkFromEnv runs the full benchmark until the CLI has
// `weft bench up`: WEFT_BENCH_UP_SIZES=3,10,25,50 WEFT_BENCH_UP_RESULTS=DIR
// go test -run TestBenchmarkFromEnv -timeout 90m -v ./internal/bench/up/
// (WEFT_BENCH_UP_POLL and WEFT_BENCH_UP_HEALTH_INTERVAL override those options).
func TestBenchmarkFromEnv(t *testing.T) {
	sizesEnv := os.Getenv("WEFT_BENCH_UP_SIZES")
	if sizesEnv == "" {
		t.Skip("set WEFT_BENCH_UP_SIZES (e.g. 3,10,25,50) to run the full benchmark")
	}
	var sizes []int
	for _, f := range strings.Split(sizesEnv, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("WEFT_BENCH_UP_SIZES=%q: %v", sizesEnv, err)
		}
		sizes = append(sizes, n)
	}
	weft, hello := binaries(t)
	results := os.Getenv("WEFT_BENCH_UP_RESULTS")
	if results == "" {
		results = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Minute)
	defer cancel()
	o := Options{Sizes: sizes, ResultsDir: results, Weft: weft, Hello: hello, Log: testLogger(t)}
	for env, d := range map[string]*time.Duration{"WEFT_BENCH_UP_POLL": &o.PollInterval, "WEFT_BENCH_UP_HEALTH_INTERVAL": &o.HealthInterval} {
		if v := os.Getenv(env); v != "" {
			var err error
			if *d, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%s=%q: %v", env, v, err)
			}
		}
	}
	r, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	csvPath, jsonPath, err := r.Save(results)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s, %s, plot %s", csvPath, jsonPath, r.Files["plot"])
	for _, s := range r.Values["sizes"].([]sizeResult) {
		assertGone(t, s.Cluster)
	}
}
