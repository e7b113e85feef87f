package chaos

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHTTPProviderAsChaoslib(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			b, _ := io.ReadAll(r.Body)
			_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "q": r.URL.Query().Get("a"), "body": string(b), "n": 3})
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		case "/teapot":
			w.WriteHeader(418)
			_, _ = w.Write([]byte("short and stout"))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	out, err := HTTPProvider{}.Run(ctx, map[string]any{"url": srv.URL + "/json", "arguments": map[string]any{"a": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	body := m["body"].(map[string]any)
	if m["status"] != int64(200) || body["q"] != "x" || body["n"] != int64(3) || m["headers"].(map[string]any)["Content-Type"] != "application/json" {
		t.Errorf("GET output %v", m)
	}
	out, _ = HTTPProvider{}.Run(ctx, map[string]any{"url": srv.URL + "/json", "method": "post",
		"headers": map[string]any{"Content-Type": "application/json"}, "arguments": map[string]any{"k": "v"}})
	if b := out.(map[string]any)["body"].(map[string]any); b["method"] != "POST" || b["body"] != `{"k":"v"}` {
		t.Errorf("POST JSON: %v", b)
	}
	out, err = HTTPProvider{}.Run(ctx, map[string]any{"url": srv.URL + "/teapot"})
	if err != nil || out.(map[string]any)["status"] != int64(418) || out.(map[string]any)["body"] != "short and stout" {
		t.Errorf("a 4xx is an output, not a failure, as in chaostoolkit-lib: %v %v", out, err)
	}
	if _, err := (HTTPProvider{}).Run(ctx, map[string]any{"url": srv.URL + "/teapot", "expected_status": int64(200)}); err == nil {
		t.Error("expected_status does not fail the activity")
	}
	if _, err := (HTTPProvider{}).Run(ctx, map[string]any{"url": srv.URL + "/slow", "timeout": 0.05}); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("timeout: %v", err)
	}
	if _, err := (HTTPProvider{}).Run(ctx, map[string]any{"url": "http://127.0.0.1:1/"}); err == nil || !strings.Contains(err.Error(), "failed to connect") {
		t.Errorf("refused: %v", err)
	}
}

func TestProcessProviderAsChaoslib(t *testing.T) {
	ctx := context.Background()
	out, err := ProcessProvider{}.Run(ctx, map[string]any{"path": "sh", "arguments": []any{"-c", "echo out; echo err >&2; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	if m["status"] != int64(3) || m["stdout"] != "out\n" || m["stderr"] != "err\n" {
		t.Errorf("output %v", m)
	}
	out, _ = ProcessProvider{}.Run(ctx, map[string]any{"path": "echo", "arguments": "a  b | tr a z"})
	if out.(map[string]any)["stdout"] != "z b\n" {
		t.Errorf("a string of arguments goes through the shell: %v", out)
	}
	out, _ = ProcessProvider{}.Run(ctx, map[string]any{"path": "echo", "arguments": map[string]any{"--a": "1", "-b": ""}})
	if out.(map[string]any)["stdout"] != "--a 1 -b\n" {
		t.Errorf("a mapping is flattened: %v", out)
	}
	if _, err := (ProcessProvider{}).Run(ctx, map[string]any{"path": "sleep", "arguments": []any{"5"}, "timeout": 0.1}); err == nil {
		t.Error("a timeout does not fail")
	}
	if _, err := (ProcessProvider{}).Run(ctx, map[string]any{"path": "/no/such/tool"}); err == nil {
		t.Error("a missing path does not fail")
	}
}

func TestContinuousHypothesisFailFast(t *testing.T) {
	var calls int
	flip := ProviderFunc(func(ctx context.Context, p map[string]any) (any, error) { calls++; return calls < 3, nil })
	e := experiment(t, "true", `{"type":"action","name":"long","provider":{"type":"block"}}`)
	e.Hypothesis.Probes[0].Provider["type"] = "flip"
	blocker := ProviderFunc(func(c context.Context, _ map[string]any) (any, error) { <-c.Done(); return nil, c.Err() })
	r := &Runner{Providers: map[string]Provider{"fake": &fake{}, "flip": flip, "block": blocker},
		HypothesisStrategy: HypoContinuously, HypothesisFrequency: 20 * time.Millisecond, FailFast: true}
	done := make(chan *Journal, 1)
	go func() { done <- r.Run(context.Background(), e) }()
	select {
	case j := <-done:
		if !j.Deviated || len(j.SteadyStates.During) < 2 || j.Passed() {
			t.Errorf("deviated %t during %d passed %t", j.Deviated, len(j.SteadyStates.During), j.Passed())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fail-fast did not stop the method")
	}
}
