// Package product is the product-service: the catalogue.
package product

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/weft-dev/weft/apps/shop/internal/auth"
	"github.com/weft-dev/weft/apps/shop/internal/db"
	"github.com/weft-dev/weft/apps/shop/internal/httpx"
	"github.com/weft-dev/weft/apps/shop/internal/service"
)

var migrations = []string{
	`CREATE TABLE IF NOT EXISTS products (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		description TEXT NOT NULL DEFAULT '',
		category TEXT NOT NULL,
		price NUMERIC(12,2) NOT NULL CHECK (price >= 0),
		quantity INTEGER NOT NULL CHECK (quantity >= 0),
		created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
		updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`,
	`CREATE INDEX IF NOT EXISTS products_category ON products (category)`,
}

// Service is the product-service.
type Service struct {
	*service.Base
	keys      *auth.Keys
	inventory *httpx.Upstream
}

// New builds the service; keys check the callers' tokens, inventory is where
// a new product's stock row is created.
func New(pool *db.Pool, log *slog.Logger, keys *auth.Keys, inventory *httpx.Upstream) *Service {
	return &Service{Base: service.NewBase("product-service", pool, log, migrations), keys: keys, inventory: inventory}
}

// Handler is the service's HTTP API.
func (s *Service) Handler() http.Handler {
	rt := s.NewRouter()
	// Browsing is public; the catalogue is written by admins (or from
	// inside the cluster).
	rt.Handle("POST /api/v1/products", s.keys.AdminOrInternal(s.create))
	rt.Handle("GET /api/v1/products", s.list)
	rt.Handle("GET /api/v1/products/category/list", s.categories)
	rt.Handle("GET /api/v1/products/{id}", s.get)
	rt.Handle("PUT /api/v1/products/{id}", s.keys.AdminOrInternal(s.update))
	rt.Handle("DELETE /api/v1/products/{id}", s.keys.AdminOrInternal(s.delete))
	return rt.Handler()
}

// Product is a catalogue entry.
type Product struct {
	ID          string      `json:"_id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Category    string      `json:"category"`
	Price       httpx.Money `json:"price"`
	Quantity    int64       `json:"quantity"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

const productColumns = `id, name, description, category, (price * 100)::bigint, quantity, created_at, updated_at`

func scanProduct(row pgx.Row) (Product, error) {
	var p Product
	var cents int64
	err := row.Scan(&p.ID, &p.Name, &p.Description, &p.Category, &cents, &p.Quantity, &p.CreatedAt, &p.UpdatedAt)
	p.Price = httpx.Money(cents)
	return p, err
}

// ReorderThreshold is the low-stock mark of a new product: 10% of its
// quantity, at least 5.
func ReorderThreshold(quantity int64) int64 {
	return max(5, quantity/10)
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	p := Product{ID: httpx.NewObjectID()}
	p.Name, _ = body.String("name", true, 200)
	p.Description, _ = body.String("description", false, 2000)
	p.Category, _ = body.String("category", true, 100)
	p.Price, _ = body.Money("price", true)
	p.Quantity, _ = body.Int("quantity", true, 0)
	if err := body.Err(); err != nil {
		return err
	}
	err = s.DB.Do(r.Context(), func(q db.Querier) error {
		return q.QueryRow(r.Context(),
			`INSERT INTO products (id, name, description, category, price, quantity)
			 VALUES ($1, $2, $3, $4, $5::numeric, $6) RETURNING created_at, updated_at`,
			p.ID, p.Name, p.Description, p.Category, p.Price.String(), p.Quantity).Scan(&p.CreatedAt, &p.UpdatedAt)
	})
	if err != nil {
		return fmt.Errorf("creating product %q: %w", p.Name, err)
	}
	if err := s.createInventory(r.Context(), p); err != nil {
		// Without its stock row the product could never be ordered, so it
		// is taken back rather than left half-created.
		if _, delErr := s.deleteProduct(context.WithoutCancel(r.Context()), p.ID); delErr != nil {
			s.Log.Error("removing product whose inventory failed", "product_id", p.ID, "err", delErr)
		}
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Service) createInventory(ctx context.Context, p Product) error {
	resp, err := s.inventory.Do(ctx, http.MethodPost, "/api/v1/inventory/", map[string]any{
		"product_id":         p.ID,
		"available_quantity": p.Quantity,
		"reserved_quantity":  0,
		"reorder_threshold":  ReorderThreshold(p.Quantity),
	})
	if err != nil {
		var apiErr *httpx.Error
		if errors.As(err, &apiErr) {
			return httpx.Errorf(apiErr.Status, "Product not created: creating its inventory failed: %s", apiErr.Detail)
		}
		return err
	}
	if resp.Status != http.StatusCreated {
		return httpx.Errorf(http.StatusBadGateway, "Product not created: %s answered %d to creating its inventory: %s",
			s.inventory.Name, resp.Status, resp.Detail())
	}
	return nil
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) error {
	query := httpx.NewQuery(r)
	skip := query.Int("skip", 0, 0, 1<<31-1)
	limit := query.Int("limit", 100, 1, 100)
	minPrice, hasMin := query.Money("min_price")
	maxPrice, hasMax := query.Money("max_price")
	if err := query.Err(); err != nil {
		return err
	}
	var conditions []string
	var args []any
	addCondition := func(condition string, arg any) {
		args = append(args, arg)
		conditions = append(conditions, strings.ReplaceAll(condition, "$?", "$"+strconv.Itoa(len(args))))
	}
	if category := query.String("category"); category != "" {
		addCondition(`category = $?`, category)
	}
	if name := query.String("name"); name != "" {
		addCondition(`position(lower($?) in lower(name)) > 0`, name)
	}
	if hasMin {
		addCondition(`price >= $?::numeric`, minPrice.String())
	}
	if hasMax {
		addCondition(`price <= $?::numeric`, maxPrice.String())
	}
	where := ""
	if len(conditions) > 0 {
		where = "WHERE " + strings.Join(conditions, " AND ")
	}
	args = append(args, skip, limit)
	sql := fmt.Sprintf(`SELECT %s FROM products %s ORDER BY created_at, id OFFSET $%d LIMIT $%d`,
		productColumns, where, len(args)-1, len(args))
	var products []Product
	err := s.DB.Do(r.Context(), func(q db.Querier) error {
		rows, err := q.Query(r.Context(), sql, args...)
		if err != nil {
			return err
		}
		products, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Product, error) { return scanProduct(row) })
		return err
	})
	if err != nil {
		return fmt.Errorf("listing products: %w", err)
	}
	httpx.WriteJSON(w, http.StatusOK, products)
	return nil
}

func (s *Service) categories(w http.ResponseWriter, r *http.Request) error {
	var categories []string
	err := s.DB.Do(r.Context(), func(q db.Querier) error {
		rows, err := q.Query(r.Context(), `SELECT DISTINCT category FROM products ORDER BY category`)
		if err != nil {
			return err
		}
		categories, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return fmt.Errorf("listing categories: %w", err)
	}
	httpx.WriteJSON(w, http.StatusOK, categories)
	return nil
}

func productID(r *http.Request) (string, error) {
	return httpx.PathObjectID(r, "id", "product")
}

func (s *Service) load(ctx context.Context, id string) (Product, error) {
	var p Product
	err := s.DB.Do(ctx, func(q db.Querier) error {
		var err error
		p, err = scanProduct(q.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return p, httpx.Errorf(http.StatusNotFound, "Product %s not found", id)
	}
	if err != nil {
		return p, fmt.Errorf("reading product %s: %w", id, err)
	}
	return p, nil
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) error {
	id, err := productID(r)
	if err != nil {
		return err
	}
	p, err := s.load(r.Context(), id)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, p)
	return nil
}

func (s *Service) update(w http.ResponseWriter, r *http.Request) error {
	id, err := productID(r)
	if err != nil {
		return err
	}
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	optionalString := func(name string, maxLen int, allowEmpty bool) *string {
		value, ok := body.String(name, false, maxLen)
		if !ok {
			return nil
		}
		if value == "" && !allowEmpty {
			body.Fail(name, "String should have at least 1 character", "string_too_short")
			return nil
		}
		return &value
	}
	name := optionalString("name", 200, false)
	description := optionalString("description", 2000, true)
	category := optionalString("category", 100, false)
	var price *string
	if m, ok := body.Money("price", false); ok {
		text := m.String()
		price = &text
	}
	var quantity *int64
	if n, ok := body.Int("quantity", false, 0); ok {
		quantity = &n
	}
	if err := body.Err(); err != nil {
		return err
	}
	var p Product
	err = s.DB.Do(r.Context(), func(q db.Querier) error {
		p, err = scanProduct(q.QueryRow(r.Context(), `UPDATE products SET
			name = COALESCE($2, name),
			description = COALESCE($3, description),
			category = COALESCE($4, category),
			price = COALESCE($5::numeric, price),
			quantity = COALESCE($6, quantity),
			updated_at = now()
			WHERE id = $1 RETURNING `+productColumns, id, name, description, category, price, quantity))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return httpx.Errorf(http.StatusNotFound, "Product %s not found", id)
	}
	if err != nil {
		return fmt.Errorf("updating product %s: %w", id, err)
	}
	httpx.WriteJSON(w, http.StatusOK, p)
	return nil
}

func (s *Service) deleteProduct(ctx context.Context, id string) (bool, error) {
	var deleted int64
	err := s.DB.Do(ctx, func(q db.Querier) error {
		tag, err := q.Exec(ctx, `DELETE FROM products WHERE id = $1`, id)
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("deleting product %s: %w", id, err)
	}
	return deleted > 0, nil
}

func (s *Service) delete(w http.ResponseWriter, r *http.Request) error {
	id, err := productID(r)
	if err != nil {
		return err
	}
	deleted, err := s.deleteProduct(r.Context(), id)
	if err != nil {
		return err
	}
	if !deleted {
		return httpx.Errorf(http.StatusNotFound, "Product %s not found", id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
