package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseConfigDurationsAndRoundTrip(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"listen":":8080","name":"api-gateway","max_body_bytes":2048,
		"routes":[{"prefix":"/api","service":"api","port":8000,"timeout":"2s","retries":2},
		          {"prefix":"/b","service":"b","port":80,"timeout":1500000000}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routes[0].Timeout != 2*time.Second || cfg.Routes[1].Timeout != 1500*time.Millisecond || cfg.Routes[0].Retries != 2 {
		t.Errorf("parsed routes %+v", cfg.Routes)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"timeout":"2s"`) {
		t.Errorf("marshalled timeout is not a duration string: %s", data)
	}
	again, err := ParseConfig(data)
	if err != nil || again.Routes[1].Timeout != cfg.Routes[1].Timeout || again.MaxBodyBytes != 2048 {
		t.Errorf("round trip: %+v, %v", again, err)
	}
	if _, err := ParseConfig([]byte(`{"routs":[]}`)); err == nil || !strings.Contains(err.Error(), "routs") {
		t.Errorf("unknown field accepted or not named: %v", err)
	}
	if _, err := ParseConfig([]byte(`{"routes":[{"prefix":"/","timeout":"soon"}]}`)); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Errorf("bad duration accepted or not named: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv(ConfigEnv, `{"routes":[{"prefix":"/","service":"web","port":80}]}`)
	cfg, err := ConfigFromEnv()
	if err != nil || len(cfg.Routes) != 1 || cfg.Routes[0].Service != "web" {
		t.Fatalf("ConfigFromEnv = %+v, %v", cfg, err)
	}
	t.Setenv(ConfigEnv, "")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), ConfigEnv) {
		t.Errorf("empty %s: error %v does not name it", ConfigEnv, err)
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Config{Listen: "80", Routes: []Route{
		{Prefix: "api", Service: "a", Port: 80},
		{Prefix: "/x", Service: "", Port: 0, Retries: -1},
		{Prefix: "/x", Service: "c", Port: 70000},
	}}, newFakeResolver(), nil)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"listen:", "routes[0].prefix", "routes[1].service", "routes[1].port", "routes[1].retries", "routes[2].prefix", "routes[2].port"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestRunServesAndShutsDown(t *testing.T) {
	listen, metricsListen := freePort(t), freePort(t)
	g, err := New(Config{Listen: listen, MetricsListen: metricsListen, Name: "edge", AccessLog: io.Discard}, newFakeResolver(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done := make(chan struct{})
	go func() { runErr = g.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	var health *http.Response
	eventually(t, 5*time.Second, "the gateway to listen", func() bool {
		health, err = http.Get(fmt.Sprintf("http://%s/health", listen))
		return err == nil
	})
	body, _ := io.ReadAll(health.Body)
	health.Body.Close()
	if health.StatusCode != http.StatusOK || !strings.Contains(string(body), `"service":"edge"`) {
		t.Errorf("/health = %d %s", health.StatusCode, body)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", metricsListen))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `weft_gateway_requests_total{code="200",route="health",upstream="none"} 1`) {
		t.Errorf("metrics lack the /health request:\n%s", body)
	}

	cancel()
	select {
	case <-done:
		if runErr != nil {
			t.Errorf("Run after cancel = %v; want nil", runErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get(fmt.Sprintf("http://%s/health", listen)); err == nil {
		t.Error("still serving after Run returned")
	}
}
