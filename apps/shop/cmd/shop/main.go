// Command shop runs one of the shop's services, or the entry of its database
// containers:
//
//	shop user|product|inventory|order   run a service (configured from env)
//	shop pg-start [flags]               initialise PostgreSQL if needed, then exec it
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/weft-dev/weft/apps/shop/internal/auth"
	"github.com/weft-dev/weft/apps/shop/internal/httpx"
	"github.com/weft-dev/weft/apps/shop/internal/inventory"
	"github.com/weft-dev/weft/apps/shop/internal/order"
	"github.com/weft-dev/weft/apps/shop/internal/pgstart"
	"github.com/weft-dev/weft/apps/shop/internal/product"
	"github.com/weft-dev/weft/apps/shop/internal/service"
	"github.com/weft-dev/weft/apps/shop/internal/user"
)

const usage = `usage: shop <command>

commands:
  user        run user-service       (PORT, DATABASE_URL, JWT_SECRET, ADMIN_EMAIL, ADMIN_PASSWORD,
                                      LOGIN_MAX_FAILURES_PER_EMAIL, LOGIN_MAX_FAILURES_PER_ADDRESS, LOGIN_FAILURE_WINDOW)
  product     run product-service    (PORT, DATABASE_URL, JWT_SECRET, INVENTORY_SERVICE_URL)
  inventory   run inventory-service  (PORT, DATABASE_URL, JWT_SECRET, PRODUCT_SERVICE_URL)
  order       run order-service      (PORT, DATABASE_URL, JWT_SECRET, USER_SERVICE_URL, PRODUCT_SERVICE_URL, INVENTORY_SERVICE_URL)
  pg-start    initialise a PostgreSQL data directory if empty, then exec postgres
              (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA, PGPORT, PG_BIN_DIR)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	log := service.Logger()
	if err := run(log, os.Args[1], os.Args[2:]); err != nil {
		log.Error("shop "+os.Args[1]+" failed", "err", err)
		os.Exit(1)
	}
}

func upstream(name, envName string) (*httpx.Upstream, error) {
	return httpx.NewUpstream(name, envName, os.Getenv(envName))
}

func run(log *slog.Logger, command string, args []string) error {
	if command == "pg-start" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return pgstart.Main(ctx, log, args)
	}
	if command == "-h" || command == "--help" || command == "help" {
		fmt.Print(usage)
		return nil
	}
	pool, err := service.OpenDB()
	if err != nil {
		return err
	}
	var (
		base    *service.Base
		handler http.Handler
		port    string
	)
	// Every service checks tokens itself with the shared secret.
	keys, err := auth.NewKeys(os.Getenv("JWT_SECRET"))
	if err != nil {
		return err
	}
	switch command {
	case "user":
		limits, err := loginLimits()
		if err != nil {
			return err
		}
		svc, err := user.New(pool, log, user.Config{
			JWTSecret:     os.Getenv("JWT_SECRET"),
			AdminEmail:    os.Getenv("ADMIN_EMAIL"),
			AdminPassword: os.Getenv("ADMIN_PASSWORD"),
			Login:         limits,
		})
		if err != nil {
			return err
		}
		base, handler, port = svc.Base, svc.Handler(), "8003"
	case "product":
		inventoryService, err := upstream("inventory-service", "INVENTORY_SERVICE_URL")
		if err != nil {
			return err
		}
		svc := product.New(pool, log, keys, inventoryService)
		base, handler, port = svc.Base, svc.Handler(), "8000"
	case "inventory":
		productService, err := upstream("product-service", "PRODUCT_SERVICE_URL")
		if err != nil {
			return err
		}
		svc := inventory.New(pool, log, keys, productService)
		base, handler, port = svc.Base, svc.Handler(), "8002"
	case "order":
		userService, err := upstream("user-service", "USER_SERVICE_URL")
		if err != nil {
			return err
		}
		productService, err := upstream("product-service", "PRODUCT_SERVICE_URL")
		if err != nil {
			return err
		}
		inventoryService, err := upstream("inventory-service", "INVENTORY_SERVICE_URL")
		if err != nil {
			return err
		}
		svc := order.New(pool, log, keys, userService, productService, inventoryService)
		base, handler, port = svc.Base, svc.Handler(), "8001"
	default:
		return fmt.Errorf("unknown command %q: want user, product, inventory, order or pg-start", command)
	}
	return service.Run(base, withVersion(handler, os.Getenv("SERVICE_VERSION")), port)
}

// withVersion marks every answer with the service's version (X-Version),
// when SERVICE_VERSION sets one: a blue/green shift shows which version
// answered.
func withVersion(h http.Handler, version string) http.Handler {
	if version == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Version", version)
		h.ServeHTTP(w, r)
	})
}

// loginLimits reads the login limits from env; unset ones take the defaults.
func loginLimits() (user.LoginLimits, error) {
	var limits user.LoginLimits
	for _, v := range []struct {
		name string
		into *int
	}{{"LOGIN_MAX_FAILURES_PER_EMAIL", &limits.PerEmail}, {"LOGIN_MAX_FAILURES_PER_ADDRESS", &limits.PerAddress}} {
		if raw := os.Getenv(v.name); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 1 {
				return limits, fmt.Errorf("%s=%q must be a positive integer", v.name, raw)
			}
			*v.into = n
		}
	}
	if raw := os.Getenv("LOGIN_FAILURE_WINDOW"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			return limits, fmt.Errorf("LOGIN_FAILURE_WINDOW=%q must be a positive duration such as 15m", raw)
		}
		limits.Window = d
	}
	return limits, nil
}
