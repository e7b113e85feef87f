package shoptest

import (
	"net/url"
	"testing"
)

// fixture is a registered user and helpers to make products and orders for
// one test.
type fixture struct {
	t      *testing.T
	s      *testShop
	suffix string
	userID string
	email  string
	token  string
}

func newFixture(t *testing.T) *fixture {
	s := requireShop(t)
	f := &fixture{t: t, s: s, suffix: uniqueSuffix()}
	f.email = "user-" + f.suffix + "@example.com"
	registered := call(t, request{method: "POST", url: f.users("/auth/register"), body: map[string]any{
		"email": f.email, "password": "Secret123", "first_name": "Test", "last_name": "User",
	}}).expect(t, 201, "register fixture user").object(t)
	f.userID = num(t, registered, "id")
	tokens := call(t, request{method: "POST", url: f.users("/auth/login"), form: url.Values{"username": {f.email}, "password": {"Secret123"}}}).
		expect(t, 200, "login fixture user").object(t)
	f.token = str(t, tokens, "access_token")
	return f
}

func (f *fixture) users(path string) string    { return f.s.userURL + "/api/v1" + path }
func (f *fixture) products(path string) string { return f.s.productURL + "/api/v1" + path }
func (f *fixture) inv(path string) string      { return f.s.invURL + "/api/v1" + path }
func (f *fixture) orders(path string) string   { return f.s.orderURL + "/api/v1" + path }

// product creates a product, as the admin, in the fixture's own category
// and returns its id.
func (f *fixture) product(name string, price float64, quantity int) string {
	p := call(f.t, request{method: "POST", url: f.products("/products/"), token: f.s.adminToken, body: map[string]any{
		"name": name + " " + f.suffix, "category": f.category(), "price": price, "quantity": quantity,
	}}).expect(f.t, 201, "create product "+name).object(f.t)
	return str(f.t, p, "_id")
}

func (f *fixture) category() string { return "Test-" + f.suffix }

func (f *fixture) productCount() int {
	return len(call(f.t, request{method: "GET", url: f.products("/products/?category=" + f.category())}).expect(f.t, 200, "list products").list(f.t))
}

func (f *fixture) stock(productID string) (available, reserved string) {
	item := call(f.t, request{method: "GET", url: f.inv("/inventory/" + productID)}).expect(f.t, 200, "inventory of "+productID).object(f.t)
	return num(f.t, item, "available_quantity"), num(f.t, item, "reserved_quantity")
}

func (f *fixture) orderCount() int {
	return len(call(f.t, request{method: "GET", url: f.orders("/orders/?limit=100&user_id=" + f.userID), token: f.token}).expect(f.t, 200, "list orders").list(f.t))
}

func shippingAddress() map[string]any {
	return map[string]any{"line1": "2 Side St", "city": "Shelbyville", "state": "IL", "postal_code": "62565", "country": "US"}
}

func (f *fixture) orderBody(items ...map[string]any) map[string]any {
	return map[string]any{"user_id": f.userID, "shipping_address": shippingAddress(), "items": items}
}

func item(productID string, quantity int, price float64) map[string]any {
	return map[string]any{"product_id": productID, "quantity": quantity, "price": price}
}
