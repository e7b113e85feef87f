package shoptest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/apps/shop/internal/db"
	"github.com/weft-dev/weft/apps/shop/internal/httpx"
	"github.com/weft-dev/weft/apps/shop/internal/order"
)

// deadURL is an address nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	return "http://" + addr
}

// TestDependencyDown: an order-service whose inventory-service or
// user-service is down answers 503 naming it, and reserves nothing.
func TestDependencyDown(t *testing.T) {
	f := newFixture(t)
	productID := f.product("Orphan", 2, 5)
	pool, err := db.New(f.s.pg.url("orders"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	upstream := func(name, baseURL string) *httpx.Upstream {
		u, err := httpx.NewUpstream(name, "TEST_URL", baseURL)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, c := range []struct {
		down           string
		users, invBase string
	}{
		{"inventory-service", f.s.userURL, deadURL(t)},
		{"user-service", deadURL(t), f.s.invURL},
	} {
		svc := order.New(pool, log, f.s.keys, upstream("user-service", c.users), upstream("product-service", f.s.productURL), upstream("inventory-service", c.invBase))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := svc.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		srv := httptest.NewServer(svc.Handler())
		resp := call(t, request{method: "POST", url: srv.URL + "/api/v1/orders/", token: f.token, body: f.orderBody(item(productID, 1, 2))}).
			expect(t, http.StatusServiceUnavailable, "order with "+c.down+" down")
		if detail := resp.detail(t); !strings.Contains(detail, c.down+" is unavailable") {
			t.Errorf("detail %q does not name %s", detail, c.down)
		}
		srv.Close()
	}
	if a, r := f.stock(productID); a != "5" || r != "0" {
		t.Errorf("stock after refused orders: %s available, %s reserved; want 5 and 0", a, r)
	}
}

// TestDatabaseRestart kills PostgreSQL with SIGKILL, as a crash would, and
// starts pg-start again on the same data directory: the services report
// unhealthy meanwhile, then reconnect by themselves, and the data is there.
func TestDatabaseRestart(t *testing.T) {
	f := newFixture(t)
	productID := f.product("Durable", 12.34, 7)
	health := func() int {
		resp, err := send(request{method: "GET", url: f.s.productURL + "/health"})
		if err != nil {
			return 0
		}
		return resp.status
	}
	if status := health(); status != 200 {
		t.Fatalf("product-service health before the crash = %d", status)
	}

	f.s.pg.kill()
	// If start fails below, later tests still need a database.
	t.Cleanup(func() {
		if f.s.pg.cmd == nil {
			if err := f.s.pg.start(); err != nil {
				t.Errorf("restarting postgres in cleanup: %v", err)
			}
		}
	})
	resp := call(t, request{method: "GET", url: f.s.productURL + "/health"}).expect(t, http.StatusServiceUnavailable, "health with the database down").object(t)
	if resp["status"] != "unhealthy" || resp["service"] != "product-service" {
		t.Errorf("health with the database down = %v", resp)
	}
	down := call(t, request{method: "GET", url: f.products("/products/" + productID)}).expect(t, http.StatusServiceUnavailable, "read with the database down")
	if detail := down.detail(t); !strings.Contains(detail, "database unavailable") {
		t.Errorf("detail with the database down = %q", detail)
	}

	if err := f.s.pg.start(); err != nil {
		t.Fatalf("restarting postgres on its data directory: %v", err)
	}
	waitFor(t, "product-service to be healthy again", 30*time.Second, func() bool { return health() == 200 })
	got := call(t, request{method: "GET", url: f.products("/products/" + productID)}).expect(t, 200, "product after the restart").object(t)
	if num(t, got, "price") != "12.34" {
		t.Errorf("product after the restart = %v", got)
	}
	if a, _ := f.stock(productID); a != "7" {
		t.Errorf("stock after the restart = %s, want 7", a)
	}
	call(t, request{method: "POST", url: f.orders("/orders/"), token: f.token, body: f.orderBody(item(productID, 2, 12.34))}).expect(t, 201, "order after the restart")
}
