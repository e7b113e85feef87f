// Package order is the order-service: orders checked against the user,
// product and inventory services, with stock reserved when an order is
// placed and released when it is cancelled.
package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
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
	`CREATE TABLE IF NOT EXISTS orders (
		id TEXT PRIMARY KEY,
		user_id TEXT NOT NULL,
		items JSONB NOT NULL,
		total_price NUMERIC(12,2) NOT NULL CHECK (total_price >= 0),
		status TEXT NOT NULL,
		shipping_address JSONB NOT NULL,
		created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
		updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`,
	`CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id, created_at DESC)`,
	`CREATE INDEX IF NOT EXISTS orders_created ON orders (created_at DESC)`,
}

// Order statuses.
const (
	StatusPending    = "pending"
	StatusPaid       = "paid"
	StatusProcessing = "processing"
	StatusShipped    = "shipped"
	StatusDelivered  = "delivered"
	StatusCancelled  = "cancelled"
	StatusRefunded   = "refunded"
)

var allStatuses = []string{StatusPending, StatusPaid, StatusProcessing, StatusShipped, StatusDelivered, StatusCancelled, StatusRefunded}

// AllowedTransitions lists, for each status, the statuses it may change to.
func AllowedTransitions(from string) []string {
	switch from {
	case StatusPending:
		return []string{StatusPaid, StatusCancelled}
	case StatusPaid:
		return []string{StatusProcessing, StatusCancelled, StatusRefunded}
	case StatusProcessing:
		return []string{StatusShipped, StatusCancelled, StatusRefunded}
	case StatusShipped:
		return []string{StatusDelivered, StatusRefunded}
	case StatusDelivered:
		return []string{StatusRefunded}
	}
	return nil
}

// holdsStock tells whether an order in this status still has its stock
// reserved: the goods have not left the warehouse.
func holdsStock(status string) bool {
	return status == StatusPending || status == StatusPaid || status == StatusProcessing
}

// releasesStock tells whether moving from one status to another gives the
// reserved stock back: the order ends before its goods were shipped.
func releasesStock(from, to string) bool {
	return holdsStock(from) && (to == StatusCancelled || to == StatusRefunded)
}

// Service is the order-service.
type Service struct {
	*service.Base
	keys      *auth.Keys
	users     *httpx.Upstream
	products  *httpx.Upstream
	inventory *httpx.Upstream
}

// New builds the service with the keys that check the callers' tokens and
// the three services it checks orders against.
func New(pool *db.Pool, log *slog.Logger, keys *auth.Keys, users, products, inventory *httpx.Upstream) *Service {
	return &Service{
		Base: service.NewBase("order-service", pool, log, migrations),
		keys: keys, users: users, products: products, inventory: inventory,
	}
}

// Handler is the service's HTTP API.
func (s *Service) Handler() http.Handler {
	rt := s.NewRouter()
	// A customer places, reads and cancels their own orders; an admin sees
	// and changes all of them; status changes (paying, shipping...) are an
	// admin's or come from inside the cluster.
	rt.Handle("POST /api/v1/orders", s.keys.User(s.create))
	rt.Handle("GET /api/v1/orders", s.keys.User(s.list))
	rt.Handle("GET /api/v1/orders/user/{user_id}", s.keys.User(s.listForUser))
	rt.Handle("GET /api/v1/orders/{id}", s.keys.User(s.get))
	rt.Handle("PUT /api/v1/orders/{id}/status", s.keys.AdminOrInternal(s.updateStatus))
	rt.Handle("DELETE /api/v1/orders/{id}", s.ownerAdminOrInternal(s.cancel))
	return rt.Handler()
}

// Item is one line of an order.
type Item struct {
	ProductID   string      `json:"product_id"`
	ProductName string      `json:"product_name,omitempty"`
	Quantity    int64       `json:"quantity"`
	Price       httpx.Money `json:"price"`
}

// Address is where an order is shipped.
type Address struct {
	Line1      string  `json:"line1"`
	Line2      *string `json:"line2"`
	City       string  `json:"city"`
	State      string  `json:"state"`
	PostalCode string  `json:"postal_code"`
	Country    string  `json:"country"`
}

// Order is a placed order.
type Order struct {
	ID              string      `json:"_id"`
	UserID          string      `json:"user_id"`
	Items           []Item      `json:"items"`
	TotalPrice      httpx.Money `json:"total_price"`
	Status          string      `json:"status"`
	ShippingAddress Address     `json:"shipping_address"`
	CreatedAt       time.Time   `json:"created_at"`
	UpdatedAt       time.Time   `json:"updated_at"`
}

// Total is the sum of price times quantity over the items.
func Total(items []Item) httpx.Money {
	var total httpx.Money
	for _, it := range items {
		total += it.Price * httpx.Money(it.Quantity)
	}
	return total
}

const orderColumns = `id, user_id, items, (total_price * 100)::bigint, status, shipping_address, created_at, updated_at`

func scanOrder(row pgx.Row) (Order, error) {
	var o Order
	var items, address []byte
	var cents int64
	if err := row.Scan(&o.ID, &o.UserID, &items, &cents, &o.Status, &address, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return o, err
	}
	o.TotalPrice = httpx.Money(cents)
	if err := json.Unmarshal(items, &o.Items); err != nil {
		return o, fmt.Errorf("decoding items of order %s: %w", o.ID, err)
	}
	if err := json.Unmarshal(address, &o.ShippingAddress); err != nil {
		return o, fmt.Errorf("decoding shipping address of order %s: %w", o.ID, err)
	}
	return o, nil
}

func parseOrder(body *httpx.Object) (Order, error) {
	o := Order{Status: StatusPending}
	o.UserID, _ = body.StringOrInt("user_id", false)
	if items, ok := body.Objects("items", true); ok {
		for _, itemBody := range items {
			var it Item
			it.ProductID, _ = itemBody.ObjectID("product_id", true)
			it.ProductID = strings.ToLower(it.ProductID)
			it.Quantity, _ = itemBody.Int("quantity", true, 1)
			it.Price, _ = itemBody.Money("price", true)
			o.Items = append(o.Items, it)
		}
	}
	if address, ok := body.Object("shipping_address", true); ok {
		a := &o.ShippingAddress
		a.Line1, _ = address.String("line1", true, 200)
		if line2, ok := address.String("line2", false, 200); ok && line2 != "" {
			a.Line2 = &line2
		}
		a.City, _ = address.String("city", true, 100)
		a.State, _ = address.String("state", true, 100)
		a.PostalCode, _ = address.String("postal_code", true, 20)
		a.Country, _ = address.String("country", true, 100)
	}
	return o, body.Err()
}

func (s *Service) verifyUser(ctx context.Context, userID string) error {
	resp, err := s.users.Do(ctx, http.MethodGet, "/internal/v1/users/"+url.PathEscape(userID)+"/verify", nil)
	if err != nil {
		return err
	}
	var verification struct {
		Valid bool `json:"valid"`
	}
	if resp.Status != http.StatusOK || resp.Decode(&verification) != nil {
		return httpx.Errorf(http.StatusBadGateway, "%s answered %d when verifying user %s: %s", s.users.Name, resp.Status, userID, resp.Detail())
	}
	if !verification.Valid {
		return httpx.Errorf(http.StatusBadRequest, "User %s not found or inactive", userID)
	}
	return nil
}

// checkProducts confirms every product exists and that the price the client
// saw is the current one (within a cent), and fills in names and prices.
func (s *Service) checkProducts(ctx context.Context, items []Item) error {
	for i := range items {
		it := &items[i]
		resp, err := s.products.Do(ctx, http.MethodGet, "/api/v1/products/"+url.PathEscape(it.ProductID), nil)
		if err != nil {
			return err
		}
		var product struct {
			Name  string      `json:"name"`
			Price httpx.Money `json:"price"`
		}
		switch {
		case resp.Status == http.StatusNotFound:
			return httpx.Errorf(http.StatusBadRequest, "Product %s not found", it.ProductID)
		case resp.Status != http.StatusOK:
			return httpx.Errorf(http.StatusBadRequest, "Product %s: %s", it.ProductID, resp.Detail())
		case resp.Decode(&product) != nil:
			return httpx.Errorf(http.StatusBadGateway, "%s sent an unreadable product %s", s.products.Name, it.ProductID)
		}
		if diff := it.Price - product.Price; diff > 1 || diff < -1 {
			return httpx.Errorf(http.StatusBadRequest, "Price mismatch for product %s (%s): current price %s, order says %s",
				it.ProductID, product.Name, product.Price, it.Price)
		}
		it.Price = product.Price
		it.ProductName = product.Name
	}
	return nil
}

// moveStock reserves or releases one item's stock for an order.
func (s *Service) moveStock(ctx context.Context, action, orderID string, it Item) error {
	resp, err := s.inventory.Do(ctx, http.MethodPost, "/api/v1/inventory/"+action, map[string]any{
		"product_id": it.ProductID, "quantity": it.Quantity, "order_id": orderID,
	})
	if err != nil {
		return err
	}
	switch resp.Status {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return httpx.Errorf(http.StatusBadRequest, "Product %s (%s) has no inventory", it.ProductID, it.ProductName)
	default:
		return httpx.Errorf(http.StatusBadRequest, "Could not %s product %s (%s): %s", action, it.ProductID, it.ProductName, resp.Detail())
	}
}

// moveAll applies action to every item; when one fails, the ones already
// done are undone, so the stock ends as it started.
func (s *Service) moveAll(ctx context.Context, action, undo, orderID string, items []Item) error {
	for i, it := range items {
		err := s.moveStock(ctx, action, orderID, it)
		if err == nil {
			continue
		}
		undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, done := range items[:i] {
			if undoErr := s.moveStock(undoCtx, undo, orderID, done); undoErr != nil {
				s.Log.Error("undoing stock change failed: inventory needs a manual adjustment",
					"order_id", orderID, "product_id", done.ProductID, "quantity", done.Quantity, "undo", undo, "err", undoErr)
			}
		}
		return err
	}
	return nil
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	o, err := parseOrder(body)
	if err != nil {
		return err
	}
	// The order is the token's user's: a user_id in the body (the seed's
	// clients send one) must name that user.
	caller, _ := auth.Caller(r)
	if o.UserID != "" && o.UserID != caller.Subject() {
		return httpx.Errorf(http.StatusForbidden, "user_id %s is not the authenticated user %s: orders are placed for the user of the access token", o.UserID, caller.Subject())
	}
	o.UserID = caller.Subject()
	o.ID = httpx.NewObjectID()
	ctx := r.Context()
	if err := s.verifyUser(ctx, o.UserID); err != nil {
		return err
	}
	if err := s.checkProducts(ctx, o.Items); err != nil {
		return err
	}
	o.TotalPrice = Total(o.Items)
	if err := s.moveAll(ctx, "reserve", "release", o.ID, o.Items); err != nil {
		return err
	}
	items, _ := json.Marshal(o.Items)
	address, _ := json.Marshal(o.ShippingAddress)
	err = s.DB.Do(ctx, func(q db.Querier) error {
		return q.QueryRow(ctx,
			`INSERT INTO orders (id, user_id, items, total_price, status, shipping_address)
			 VALUES ($1, $2, $3, $4::numeric, $5, $6) RETURNING created_at, updated_at`,
			o.ID, o.UserID, items, o.TotalPrice.String(), o.Status, address).Scan(&o.CreatedAt, &o.UpdatedAt)
	})
	if err != nil {
		if releaseErr := s.moveAll(context.WithoutCancel(ctx), "release", "reserve", o.ID, o.Items); releaseErr != nil {
			s.Log.Error("releasing stock of an order that could not be stored", "order_id", o.ID, "err", releaseErr)
		}
		return fmt.Errorf("storing order %s: %w", o.ID, err)
	}
	httpx.WriteJSON(w, http.StatusCreated, o)
	return nil
}

func (s *Service) query(w http.ResponseWriter, r *http.Request, userID string) error {
	query := httpx.NewQuery(r)
	skip := query.Int("skip", 0, 0, math.MaxInt32)
	limit := query.Int("limit", 10, 1, 100)
	status := query.String("status")
	if status != "" && !slices.Contains(allStatuses, status) {
		return httpx.Invalid("Input should be one of: "+strings.Join(allStatuses, ", "), "enum", "query", "status")
	}
	if userID == "" {
		userID = query.String("user_id")
	}
	if err := query.Err(); err != nil {
		return err
	}
	// A customer sees their own orders only; an admin sees everyone's.
	if caller, _ := auth.Caller(r); !caller.IsAdmin() {
		if userID != "" && userID != caller.Subject() {
			return httpx.Errorf(http.StatusForbidden, "Not allowed: the orders of user %s are theirs (you are user %s)", userID, caller.Subject())
		}
		userID = caller.Subject()
	}
	var conditions []string
	var args []any
	if status != "" {
		args = append(args, status)
		conditions = append(conditions, "status = $"+strconv.Itoa(len(args)))
	}
	if userID != "" {
		args = append(args, userID)
		conditions = append(conditions, "user_id = $"+strconv.Itoa(len(args)))
	}
	where := ""
	if len(conditions) > 0 {
		where = "WHERE " + strings.Join(conditions, " AND ")
	}
	args = append(args, skip, limit)
	sql := fmt.Sprintf(`SELECT %s FROM orders %s ORDER BY created_at DESC, id DESC OFFSET $%d LIMIT $%d`,
		orderColumns, where, len(args)-1, len(args))
	var orders []Order
	err := s.DB.Do(r.Context(), func(q db.Querier) error {
		rows, err := q.Query(r.Context(), sql, args...)
		if err != nil {
			return err
		}
		orders, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Order, error) { return scanOrder(row) })
		return err
	})
	if err != nil {
		return fmt.Errorf("listing orders: %w", err)
	}
	httpx.WriteJSON(w, http.StatusOK, orders)
	return nil
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) error { return s.query(w, r, "") }

func (s *Service) listForUser(w http.ResponseWriter, r *http.Request) error {
	return s.query(w, r, r.PathValue("user_id"))
}

func orderID(r *http.Request) (string, error) {
	return httpx.PathObjectID(r, "id", "order")
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) error {
	id, err := orderID(r)
	if err != nil {
		return err
	}
	var o Order
	err = s.DB.Do(r.Context(), func(q db.Querier) error {
		o, err = scanOrder(q.QueryRow(r.Context(), `SELECT `+orderColumns+` FROM orders WHERE id = $1`, id))
		return err
	})
	// Another customer's order is answered as if it did not exist.
	if caller, _ := auth.Caller(r); errors.Is(err, pgx.ErrNoRows) || (err == nil && !caller.IsAdmin() && o.UserID != caller.Subject()) {
		return httpx.Errorf(http.StatusNotFound, "Order %s not found", id)
	}
	if err != nil {
		return fmt.Errorf("reading order %s: %w", id, err)
	}
	httpx.WriteJSON(w, http.StatusOK, o)
	return nil
}

// transition moves an order to status "to" if check allows it, releasing its
// stock when the move ends the order. The order's row stays locked while the
// stock is released, so two cancellations cannot both release it.
func (s *Service) transition(ctx context.Context, id, to string, check func(Order) error) (Order, error) {
	var o Order
	err := s.DB.Tx(ctx, func(q db.Querier) error {
		var err error
		o, err = scanOrder(q.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if err := check(o); err != nil {
			return err
		}
		if releasesStock(o.Status, to) {
			if err := s.moveAll(ctx, "release", "reserve", o.ID, o.Items); err != nil {
				return err
			}
		}
		return q.QueryRow(ctx, `UPDATE orders SET status = $2, updated_at = now() WHERE id = $1 RETURNING updated_at`, id, to).Scan(&o.UpdatedAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return o, httpx.Errorf(http.StatusNotFound, "Order %s not found", id)
	}
	if err != nil {
		var apiErr *httpx.Error
		if errors.As(err, &apiErr) {
			return o, err
		}
		return o, fmt.Errorf("changing status of order %s to %s: %w", id, to, err)
	}
	o.Status = to
	return o, nil
}

func (s *Service) updateStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := orderID(r)
	if err != nil {
		return err
	}
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	to, ok := body.String("status", true, 0)
	if ok && !slices.Contains(allStatuses, to) {
		body.Fail("status", "Input should be one of: "+strings.Join(allStatuses, ", "), "enum")
	}
	if err := body.Err(); err != nil {
		return err
	}
	o, err := s.transition(r.Context(), id, to, func(o Order) error {
		allowed := AllowedTransitions(o.Status)
		if slices.Contains(allowed, to) {
			return nil
		}
		if len(allowed) == 0 {
			return httpx.Errorf(http.StatusBadRequest, "Cannot change order status from %s to %s: %s is final", o.Status, to, o.Status)
		}
		return httpx.Errorf(http.StatusBadRequest, "Cannot change order status from %s to %s: allowed: %s",
			o.Status, to, strings.Join(allowed, ", "))
	})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, o)
	return nil
}

func (s *Service) cancel(w http.ResponseWriter, r *http.Request) error {
	id, err := orderID(r)
	if err != nil {
		return err
	}
	caller, authenticated := auth.Caller(r)
	_, err = s.transition(r.Context(), id, StatusCancelled, func(o Order) error {
		if authenticated && !caller.IsAdmin() && o.UserID != caller.Subject() {
			return httpx.Errorf(http.StatusNotFound, "Order %s not found", id)
		}
		if !holdsStock(o.Status) {
			return httpx.Errorf(http.StatusBadRequest, "Order %s cannot be cancelled: it is %s", id, o.Status)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ownerAdminOrInternal lets h run for a caller inside the cluster without a
// token, or for any authenticated user; h itself limits a customer to their
// own orders.
func (s *Service) ownerAdminOrInternal(h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if auth.Internal(r) && r.Header.Get("Authorization") == "" {
			return h(w, r)
		}
		return s.keys.User(h)(w, r)
	}
}
