// Package inventory is the inventory-service: stock per product, atomic
// reservations, and a history of every change.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/weft-dev/weft/apps/shop/internal/auth"
	"github.com/weft-dev/weft/apps/shop/internal/db"
	"github.com/weft-dev/weft/apps/shop/internal/httpx"
	"github.com/weft-dev/weft/apps/shop/internal/service"
)

var migrations = []string{
	`CREATE TABLE IF NOT EXISTS inventory (
		id BIGSERIAL PRIMARY KEY,
		product_id TEXT NOT NULL UNIQUE,
		available_quantity INTEGER NOT NULL CHECK (available_quantity >= 0),
		reserved_quantity INTEGER NOT NULL CHECK (reserved_quantity >= 0),
		reorder_threshold INTEGER NOT NULL CHECK (reorder_threshold >= 0),
		created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
		updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`,
	`CREATE TABLE IF NOT EXISTS inventory_history (
		id BIGSERIAL PRIMARY KEY,
		product_id TEXT NOT NULL,
		change_type TEXT NOT NULL,
		quantity_change INTEGER NOT NULL,
		available_after INTEGER NOT NULL,
		reserved_after INTEGER NOT NULL,
		reason TEXT NOT NULL DEFAULT '',
		reference_id TEXT,
		created_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`,
	`CREATE INDEX IF NOT EXISTS inventory_history_product ON inventory_history (product_id, id)`,
}

// Service is the inventory-service.
type Service struct {
	*service.Base
	keys     *auth.Keys
	products *httpx.Upstream
}

// New builds the service; keys check the callers' tokens, products is asked
// whether a product exists before its stock row is created.
func New(pool *db.Pool, log *slog.Logger, keys *auth.Keys, products *httpx.Upstream) *Service {
	return &Service{Base: service.NewBase("inventory-service", pool, log, migrations), keys: keys, products: products}
}

// Handler is the service's HTTP API.
func (s *Service) Handler() http.Handler {
	rt := s.NewRouter()
	// Reading stock is public; every write, and the history (it names
	// orders), needs an admin's token or a caller inside the cluster
	// (product-service creates rows, order-service reserves and releases).
	adminOrInternal := s.keys.AdminOrInternal
	rt.Handle("POST /api/v1/inventory", adminOrInternal(s.create))
	rt.Handle("GET /api/v1/inventory", s.list)
	rt.Handle("GET /api/v1/inventory/low-stock", s.lowStock)
	rt.Handle("GET /api/v1/inventory/check", s.check)
	rt.Handle("POST /api/v1/inventory/reserve", adminOrInternal(s.reserve))
	rt.Handle("POST /api/v1/inventory/release", adminOrInternal(s.release))
	rt.Handle("POST /api/v1/inventory/adjust", adminOrInternal(s.adjust))
	rt.Handle("GET /api/v1/inventory/history/{product_id}", adminOrInternal(s.history))
	rt.Handle("GET /api/v1/inventory/{product_id}", s.get)
	rt.Handle("PUT /api/v1/inventory/{product_id}", adminOrInternal(s.update))
	return rt.Handler()
}

// Item is the stock of one product.
type Item struct {
	ID                int64     `json:"id"`
	ProductID         string    `json:"product_id"`
	AvailableQuantity int64     `json:"available_quantity"`
	ReservedQuantity  int64     `json:"reserved_quantity"`
	ReorderThreshold  int64     `json:"reorder_threshold"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// HistoryEntry is one change of a product's stock.
type HistoryEntry struct {
	ID             int64     `json:"id"`
	ProductID      string    `json:"product_id"`
	ChangeType     string    `json:"change_type"`
	QuantityChange int64     `json:"quantity_change"`
	AvailableAfter int64     `json:"available_after"`
	ReservedAfter  int64     `json:"reserved_after"`
	Reason         string    `json:"reason"`
	ReferenceID    *string   `json:"reference_id"`
	CreatedAt      time.Time `json:"created_at"`
}

const itemColumns = `id, product_id, available_quantity, reserved_quantity, reorder_threshold, created_at, updated_at`

func scanItem(row pgx.Row) (Item, error) {
	var it Item
	err := row.Scan(&it.ID, &it.ProductID, &it.AvailableQuantity, &it.ReservedQuantity, &it.ReorderThreshold, &it.CreatedAt, &it.UpdatedAt)
	return it, err
}

func collectItems(rows pgx.Rows, err error) ([]Item, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Item, error) { return scanItem(row) })
}

func recordHistory(ctx context.Context, q db.Querier, it Item, changeType string, change int64, reason string, referenceID *string) error {
	_, err := q.Exec(ctx,
		`INSERT INTO inventory_history (product_id, change_type, quantity_change, available_after, reserved_after, reason, reference_id)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		it.ProductID, changeType, change, it.AvailableQuantity, it.ReservedQuantity, reason, referenceID)
	if err != nil {
		return fmt.Errorf("recording %s of product %s in history: %w", changeType, it.ProductID, err)
	}
	return nil
}

func pathProductID(r *http.Request) (string, error) {
	return httpx.PathObjectID(r, "product_id", "product")
}

func notFound(productID string) error {
	return httpx.Errorf(http.StatusNotFound, "Inventory for product %s not found", productID)
}

func optionalString(body *httpx.Object, name string) *string {
	if value, ok := body.String(name, false, 200); ok && value != "" {
		return &value
	}
	return nil
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	var it Item
	it.ProductID, _ = body.ObjectID("product_id", true)
	it.AvailableQuantity, _ = body.Int("available_quantity", true, 0)
	it.ReservedQuantity, _ = body.Int("reserved_quantity", false, 0)
	it.ReorderThreshold = 10
	if threshold, ok := body.Int("reorder_threshold", false, 0); ok {
		it.ReorderThreshold = threshold
	}
	if err := body.Err(); err != nil {
		return err
	}
	it.ProductID = strings.ToLower(it.ProductID)
	resp, err := s.products.Do(r.Context(), http.MethodGet, "/api/v1/products/"+url.PathEscape(it.ProductID), nil)
	if err != nil {
		return err
	}
	switch resp.Status {
	case http.StatusOK:
	case http.StatusNotFound:
		return httpx.Errorf(http.StatusNotFound, "Product %s not found: create the product first", it.ProductID)
	default:
		return httpx.Errorf(http.StatusBadGateway, "%s answered %d about product %s: %s", s.products.Name, resp.Status, it.ProductID, resp.Detail())
	}
	err = s.DB.Tx(r.Context(), func(q db.Querier) error {
		var err error
		it, err = scanItem(q.QueryRow(r.Context(),
			`INSERT INTO inventory (product_id, available_quantity, reserved_quantity, reorder_threshold)
			 VALUES ($1, $2, $3, $4) RETURNING `+itemColumns,
			it.ProductID, it.AvailableQuantity, it.ReservedQuantity, it.ReorderThreshold))
		if err != nil {
			return err
		}
		return recordHistory(r.Context(), q, it, "create", it.AvailableQuantity, "initial stock", nil)
	})
	if db.IsUniqueViolation(err) {
		return httpx.Errorf(http.StatusBadRequest, "Inventory for product %s already exists: use PUT /api/v1/inventory/%s", it.ProductID, it.ProductID)
	}
	if err != nil {
		return fmt.Errorf("creating inventory for product %s: %w", it.ProductID, err)
	}
	httpx.WriteJSON(w, http.StatusCreated, it)
	return nil
}

func (s *Service) listWhere(w http.ResponseWriter, r *http.Request, lowStockOnly bool) error {
	query := httpx.NewQuery(r)
	skip := query.Int("skip", 0, 0, math.MaxInt32)
	limit := query.Int("limit", 100, 1, 100)
	lowStockOnly = query.Bool("low_stock_only") || lowStockOnly
	if err := query.Err(); err != nil {
		return err
	}
	where := ""
	if lowStockOnly {
		where = "WHERE available_quantity <= reorder_threshold"
	}
	var items []Item
	err := s.DB.Do(r.Context(), func(q db.Querier) error {
		var err error
		items, err = collectItems(q.Query(r.Context(),
			`SELECT `+itemColumns+` FROM inventory `+where+` ORDER BY id OFFSET $1 LIMIT $2`, skip, limit))
		return err
	})
	if err != nil {
		return fmt.Errorf("listing inventory: %w", err)
	}
	httpx.WriteJSON(w, http.StatusOK, items)
	return nil
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) error { return s.listWhere(w, r, false) }

func (s *Service) lowStock(w http.ResponseWriter, r *http.Request) error {
	return s.listWhere(w, r, true)
}

func (s *Service) load(ctx context.Context, productID string) (Item, error) {
	var it Item
	err := s.DB.Do(ctx, func(q db.Querier) error {
		var err error
		it, err = scanItem(q.QueryRow(ctx, `SELECT `+itemColumns+` FROM inventory WHERE product_id = $1`, productID))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return it, notFound(productID)
	}
	if err != nil {
		return it, fmt.Errorf("reading inventory of product %s: %w", productID, err)
	}
	return it, nil
}

func (s *Service) check(w http.ResponseWriter, r *http.Request) error {
	query := httpx.NewQuery(r)
	productID := strings.ToLower(query.String("product_id"))
	quantity := query.Int("quantity", 0, 1, math.MaxInt32)
	var problems []httpx.FieldError
	if !httpx.IsObjectID(productID) {
		problems = append(problems, httpx.FieldError{Loc: []any{"query", "product_id"}, Msg: "Field required: a 24-character hexadecimal product id", Type: "missing"})
	}
	if query.String("quantity") == "" {
		problems = append(problems, httpx.FieldError{Loc: []any{"query", "quantity"}, Msg: "Field required: a positive integer", Type: "missing"})
	}
	if err := query.Err(); err != nil {
		var validation *httpx.ValidationError
		errors.As(err, &validation)
		problems = append(problems, validation.Fields...)
	}
	if len(problems) > 0 {
		return &httpx.ValidationError{Fields: problems}
	}
	it, err := s.load(r.Context(), productID)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"available":          it.AvailableQuantity >= quantity,
		"current_quantity":   it.AvailableQuantity,
		"requested_quantity": quantity,
		"product_id":         productID,
	})
	return nil
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) error {
	productID, err := pathProductID(r)
	if err != nil {
		return err
	}
	it, err := s.load(r.Context(), productID)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, it)
	return nil
}

func (s *Service) update(w http.ResponseWriter, r *http.Request) error {
	productID, err := pathProductID(r)
	if err != nil {
		return err
	}
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	optionalInt := func(name string) *int64 {
		if n, ok := body.Int(name, false, 0); ok {
			return &n
		}
		return nil
	}
	available := optionalInt("available_quantity")
	reserved := optionalInt("reserved_quantity")
	threshold := optionalInt("reorder_threshold")
	if err := body.Err(); err != nil {
		return err
	}
	var it Item
	err = s.DB.Tx(r.Context(), func(q db.Querier) error {
		var before int64
		if err := q.QueryRow(r.Context(), `SELECT available_quantity FROM inventory WHERE product_id = $1 FOR UPDATE`, productID).Scan(&before); err != nil {
			return err
		}
		it, err = scanItem(q.QueryRow(r.Context(), `UPDATE inventory SET
			available_quantity = COALESCE($2, available_quantity),
			reserved_quantity = COALESCE($3, reserved_quantity),
			reorder_threshold = COALESCE($4, reorder_threshold),
			updated_at = now()
			WHERE product_id = $1 RETURNING `+itemColumns, productID, available, reserved, threshold))
		if err != nil {
			return err
		}
		return recordHistory(r.Context(), q, it, "update", it.AvailableQuantity-before, "manual update", nil)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound(productID)
	}
	if err != nil {
		return fmt.Errorf("updating inventory of product %s: %w", productID, err)
	}
	httpx.WriteJSON(w, http.StatusOK, it)
	return nil
}

// stockChange is one guarded change of a product's stock. The guard sits in
// the same UPDATE as the change, so concurrent changes can never take the
// stock below zero: PostgreSQL re-checks the row after waiting for its lock.
type stockChange struct {
	kind   string
	set    string // SET clause; $2 is the amount
	guard  string // WHERE condition that keeps the stock valid; $2 is the amount
	amount int64
	// delta is the change of the available quantity, for the history.
	delta       int64
	reason      string
	referenceID *string
	refusal     func(productID string, current Item) string
}

func (s *Service) apply(ctx context.Context, productID string, change stockChange) (Item, error) {
	var it Item
	err := s.DB.Tx(ctx, func(q db.Querier) error {
		var err error
		it, err = scanItem(q.QueryRow(ctx, `UPDATE inventory SET `+change.set+`, updated_at = now()
			WHERE product_id = $1 AND `+change.guard+` RETURNING `+itemColumns, productID, change.amount))
		if err != nil {
			return err
		}
		return recordHistory(ctx, q, it, change.kind, change.delta, change.reason, change.referenceID)
	})
	// A check violation means the guard let a change through that the
	// table's constraints refuse; the answer is the same refusal.
	if errors.Is(err, pgx.ErrNoRows) || db.IsCheckViolation(err) {
		current, loadErr := s.load(ctx, productID)
		if loadErr != nil {
			return it, loadErr
		}
		return it, httpx.Errorf(http.StatusBadRequest, "%s", change.refusal(productID, current))
	}
	if err != nil {
		return it, fmt.Errorf("applying %s of %d to product %s: %w", change.kind, change.amount, productID, err)
	}
	return it, nil
}

func (s *Service) reserveOrRelease(w http.ResponseWriter, r *http.Request, kind string) error {
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	productID, _ := body.ObjectID("product_id", true)
	quantity, _ := body.Int("quantity", true, 1)
	orderID := optionalString(body, "order_id")
	if err := body.Err(); err != nil {
		return err
	}
	productID = strings.ToLower(productID)
	reason := kind + " for order"
	if orderID != nil {
		reason += " " + *orderID
	}
	change := stockChange{kind: kind, amount: quantity, reason: reason, referenceID: orderID}
	if kind == "reserve" {
		change.set = `available_quantity = available_quantity - $2, reserved_quantity = reserved_quantity + $2`
		change.guard = `available_quantity >= $2`
		change.delta = -quantity
		change.refusal = func(productID string, current Item) string {
			return fmt.Sprintf("Insufficient stock for product %s: %d available, %d requested", productID, current.AvailableQuantity, quantity)
		}
	} else {
		change.set = `available_quantity = available_quantity + $2, reserved_quantity = reserved_quantity - $2`
		change.guard = `reserved_quantity >= $2`
		change.delta = quantity
		change.refusal = func(productID string, current Item) string {
			return fmt.Sprintf("Cannot release %d of product %s: only %d reserved", quantity, productID, current.ReservedQuantity)
		}
	}
	it, err := s.apply(r.Context(), productID, change)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, it)
	return nil
}

func (s *Service) reserve(w http.ResponseWriter, r *http.Request) error {
	return s.reserveOrRelease(w, r, "reserve")
}

func (s *Service) release(w http.ResponseWriter, r *http.Request) error {
	return s.reserveOrRelease(w, r, "release")
}

func (s *Service) adjust(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	productID, _ := body.ObjectID("product_id", true)
	delta, hasDelta := body.Int("quantity_change", true, -math.MaxInt32)
	reason, _ := body.String("reason", true, 500)
	referenceID := optionalString(body, "reference_id")
	if hasDelta && delta == 0 {
		body.Fail("quantity_change", "Value should not be 0", "value_error")
	}
	if err := body.Err(); err != nil {
		return err
	}
	productID = strings.ToLower(productID)
	it, err := s.apply(r.Context(), productID, stockChange{
		kind:        "adjust",
		set:         `available_quantity = available_quantity + $2`,
		guard:       `available_quantity + $2 >= 0`,
		amount:      delta,
		delta:       delta,
		reason:      reason,
		referenceID: referenceID,
		refusal: func(productID string, current Item) string {
			return fmt.Sprintf("Adjustment of %d would make the stock of product %s negative: %d available", delta, productID, current.AvailableQuantity)
		},
	})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, it)
	return nil
}

func (s *Service) history(w http.ResponseWriter, r *http.Request) error {
	productID, err := pathProductID(r)
	if err != nil {
		return err
	}
	query := httpx.NewQuery(r)
	skip := query.Int("skip", 0, 0, math.MaxInt32)
	limit := query.Int("limit", 100, 1, 1000)
	if err := query.Err(); err != nil {
		return err
	}
	if _, err := s.load(r.Context(), productID); err != nil {
		return err
	}
	var entries []HistoryEntry
	err = s.DB.Do(r.Context(), func(q db.Querier) error {
		rows, err := q.Query(r.Context(),
			`SELECT id, product_id, change_type, quantity_change, available_after, reserved_after, reason, reference_id, created_at
			 FROM inventory_history WHERE product_id = $1 ORDER BY id DESC OFFSET $2 LIMIT $3`, productID, skip, limit)
		if err != nil {
			return err
		}
		entries, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (HistoryEntry, error) {
			var e HistoryEntry
			err := row.Scan(&e.ID, &e.ProductID, &e.ChangeType, &e.QuantityChange, &e.AvailableAfter, &e.ReservedAfter, &e.Reason, &e.ReferenceID, &e.CreatedAt)
			return e, err
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("reading history of product %s: %w", productID, err)
	}
	httpx.WriteJSON(w, http.StatusOK, entries)
	return nil
}
