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
	"syscall"

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
  user        run user-service       (PORT, DATABASE_URL, JWT_SECRET)
  product     run product-service    (PORT, DATABASE_URL, INVENTORY_SERVICE_URL)
  inventory   run inventory-service  (PORT, DATABASE_URL, PRODUCT_SERVICE_URL)
  order       run order-service      (PORT, DATABASE_URL, USER_SERVICE_URL, PRODUCT_SERVICE_URL, INVENTORY_SERVICE_URL)
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
	switch command {
	case "user":
		svc, err := user.New(pool, log, os.Getenv("JWT_SECRET"))
		if err != nil {
			return err
		}
		base, handler, port = svc.Base, svc.Handler(), "8003"
	case "product":
		inventoryService, err := upstream("inventory-service", "INVENTORY_SERVICE_URL")
		if err != nil {
			return err
		}
		svc := product.New(pool, log, inventoryService)
		base, handler, port = svc.Base, svc.Handler(), "8000"
	case "inventory":
		productService, err := upstream("product-service", "PRODUCT_SERVICE_URL")
		if err != nil {
			return err
		}
		svc := inventory.New(pool, log, productService)
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
		svc := order.New(pool, log, userService, productService, inventoryService)
		base, handler, port = svc.Base, svc.Handler(), "8001"
	default:
		return fmt.Errorf("unknown command %q: want user, product, inventory, order or pg-start", command)
	}
	return service.Run(base, handler, port)
}
