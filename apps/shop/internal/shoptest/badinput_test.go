package shoptest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestBadProductInput sends broken product bodies: each is refused with 422
// naming the fields, and no product appears.
func TestBadProductInput(t *testing.T) {
	f := newFixture(t)
	valid := `"name":"Gadget","category":"` + f.category() + `"`
	cases := []struct {
		name   string
		body   string
		fields []string
	}{
		{"malformed JSON", `{` + valid + `,"price": 1.5,`, []string{"body"}},
		{"not an object", `["Gadget"]`, []string{"body"}},
		{"empty body", ``, []string{"body"}},
		{"missing fields", `{"description":"no name"}`, []string{"body.name", "body.category", "body.price", "body.quantity"}},
		{"wrong types", `{` + valid + `,"price":"cheap","quantity":"ten"}`, []string{"body.price", "body.quantity"}},
		{"fractional quantity", `{` + valid + `,"price":1,"quantity":1.5}`, []string{"body.quantity"}},
		{"negative price", `{` + valid + `,"price":-1,"quantity":1}`, []string{"body.price"}},
		{"negative quantity", `{` + valid + `,"price":1,"quantity":-5}`, []string{"body.quantity"}},
		{"blank name", `{"name":"  ","category":"` + f.category() + `","price":1,"quantity":1}`, []string{"body.name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := call(t, request{method: "POST", url: f.products("/products/"), token: f.s.adminToken, body: []byte(c.body)}).
				expect(t, http.StatusUnprocessableEntity, c.name)
			if got := resp.fieldErrors(t); !slices.Equal(got, c.fields) {
				t.Errorf("422 names %v, want %v", got, c.fields)
			}
		})
	}
	if n := f.productCount(); n != 0 {
		t.Errorf("%d products exist after only bad requests", n)
	}

	id := f.product("Kept", 5, 10)
	call(t, request{method: "PUT", url: f.products("/products/" + id), token: f.s.adminToken, body: `{"price": -3}`}).expect(t, 422, "negative price update")
	call(t, request{method: "PUT", url: f.products("/products/" + id), token: f.s.adminToken, body: `{"price": 7.25}`}).expect(t, 200, "price update")
	got := call(t, request{method: "GET", url: f.products("/products/" + id + "/")}).expect(t, 200, "read product").object(t)
	if num(t, got, "price") != "7.25" {
		t.Errorf("price after one good and one bad update = %s, want 7.25", num(t, got, "price"))
	}
	if available, _ := f.stock(id); available != "10" {
		t.Errorf("stock of the product = %s, want 10", available)
	}
}

// TestMalformedAndUnknownIDs: a malformed id is 400, an unknown one 404,
// on every service that takes ids.
func TestMalformedAndUnknownIDs(t *testing.T) {
	f := newFixture(t)
	unknown := strings.Repeat("0", 24)
	for _, c := range []struct {
		method, url string
		body        any
		status      int
		detail      string
	}{
		{"GET", f.products("/products/not-an-id"), nil, 400, "Invalid product id"},
		{"GET", f.products("/products/" + unknown), nil, 404, "not found"},
		{"PUT", f.products("/products/" + unknown), map[string]any{"name": "x"}, 404, "not found"},
		{"DELETE", f.products("/products/xyz"), nil, 400, "Invalid product id"},
		{"DELETE", f.products("/products/" + unknown), nil, 404, "not found"},
		{"GET", f.inv("/inventory/12345"), nil, 400, "Invalid product id"},
		{"GET", f.inv("/inventory/" + unknown), nil, 404, "not found"},
		{"GET", f.orders("/orders/zzz"), nil, 400, "Invalid order id"},
		{"GET", f.orders("/orders/" + unknown), nil, 404, "not found"},
		{"DELETE", f.orders("/orders/" + unknown), nil, 404, "not found"},
		{"GET", f.users("/users/me/addresses/abc"), nil, 400, "Invalid address id"},
		{"GET", f.users("/users/me/addresses/999999"), nil, 404, "not found"},
		{"GET", f.products("/no/such/route"), nil, 404, "Not Found"},
	} {
		token := f.token
		if strings.HasPrefix(c.url, f.s.productURL) {
			token = f.s.adminToken
		}
		resp := call(t, request{method: c.method, url: c.url, body: c.body, token: token}).expect(t, c.status, c.method+" "+c.url)
		if detail := resp.detail(t); !strings.Contains(detail, c.detail) {
			t.Errorf("%s %s: detail %q lacks %q", c.method, c.url, detail, c.detail)
		}
	}
	verify := func(id string) string { return f.s.userURL + "/internal/v1/users/" + id + "/verify" }
	if v := call(t, request{method: "GET", url: verify("abc")}).expect(t, 200, "verify malformed").object(t); v["valid"] != false {
		t.Errorf("verify of a malformed id = %v", v)
	}
	if v := call(t, request{method: "GET", url: verify("99999999")}).expect(t, 200, "verify unknown").object(t); v["valid"] != false {
		t.Errorf("verify of an unknown id = %v", v)
	}
	v := call(t, request{method: "GET", url: verify(f.userID)}).expect(t, 200, "verify").object(t)
	if v["valid"] != true || v["email"] != f.email || v["full_name"] != "Test User" {
		t.Errorf("verify of the fixture user = %v", v)
	}
}

// TestAccountRefusals covers weak passwords, duplicate emails, bad logins and
// missing, broken or expired tokens.
func TestAccountRefusals(t *testing.T) {
	f := newFixture(t)
	register := func(email, password string) response {
		return call(t, request{method: "POST", url: f.users("/auth/register"), body: map[string]any{
			"email": email, "password": password, "first_name": "A", "last_name": "B",
		}})
	}
	for _, weak := range []string{"short1A", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere"} {
		resp := register("weak-"+f.suffix+"@example.com", weak).expect(t, 422, "weak password "+weak)
		if got := resp.fieldErrors(t); !slices.Equal(got, []string{"body.password"}) {
			t.Errorf("weak password %q: 422 names %v", weak, got)
		}
	}
	if v := call(t, request{method: "POST", url: f.users("/auth/login"), form: url.Values{"username": {"weak-" + f.suffix + "@example.com"}, "password": {"Whatever1"}}}); v.status != 401 {
		t.Errorf("a refused registration left a user behind: login answered %d", v.status)
	}
	resp := register("not-an-email", "Secret123").expect(t, 422, "bad email")
	if got := resp.fieldErrors(t); !slices.Equal(got, []string{"body.email"}) {
		t.Errorf("bad email: 422 names %v", got)
	}
	if detail := register(f.email, "Secret123").expect(t, 400, "duplicate email").detail(t); detail != "Email already registered" {
		t.Errorf("duplicate email detail = %q", detail)
	}

	call(t, request{method: "POST", url: f.users("/auth/login"), form: url.Values{"username": {f.email}, "password": {"Wrong123"}}}).expect(t, 401, "wrong password")
	call(t, request{method: "POST", url: f.users("/auth/login"), form: url.Values{"username": {"nobody-" + f.suffix + "@example.com"}, "password": {"Secret123"}}}).expect(t, 401, "unknown user")
	call(t, request{method: "POST", url: f.users("/auth/login"), form: url.Values{"username": {f.email}}}).expect(t, 422, "login without password")

	me := f.users("/users/me")
	if detail := call(t, request{method: "GET", url: me}).expect(t, 401, "no token").detail(t); !strings.Contains(detail, "Not authenticated") {
		t.Errorf("missing token detail = %q", detail)
	}
	call(t, request{method: "GET", url: me, token: "garbage"}).expect(t, 401, "garbage token")

	sign := func(claims jwt.MapClaims, secret string) string {
		token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	expired := sign(jwt.MapClaims{"sub": f.userID, "type": "access", "exp": time.Now().Add(-time.Minute).Unix()}, jwtSecret)
	if detail := call(t, request{method: "GET", url: me, token: expired}).expect(t, 401, "expired token").detail(t); !strings.Contains(detail, "expired") {
		t.Errorf("expired token detail = %q", detail)
	}
	forged := sign(jwt.MapClaims{"sub": f.userID, "type": "access", "exp": time.Now().Add(time.Hour).Unix()}, "some-other-secret-value")
	call(t, request{method: "GET", url: me, token: forged}).expect(t, 401, "token signed with another secret")
	refreshAsAccess := sign(jwt.MapClaims{"sub": f.userID, "type": "refresh", "exp": time.Now().Add(time.Hour).Unix()}, jwtSecret)
	call(t, request{method: "GET", url: me, token: refreshAsAccess}).expect(t, 401, "refresh token used as access token")
	call(t, request{method: "POST", url: f.users("/auth/refresh"), body: map[string]any{"refresh_token": f.token}}).expect(t, 401, "access token used to refresh")
	call(t, request{method: "GET", url: me, token: f.token}).expect(t, 200, "valid token")

	call(t, request{method: "PUT", url: f.users("/users/me/password"), token: f.token,
		body: map[string]any{"current_password": "Wrong123", "new_password": "Better456"}}).expect(t, 400, "wrong current password")
	call(t, request{method: "PUT", url: f.users("/users/me/password"), token: f.token,
		body: map[string]any{"current_password": "Secret123", "new_password": "weak"}}).expect(t, 422, "weak new password")
	call(t, request{method: "POST", url: f.users("/auth/login"), form: url.Values{"username": {f.email}, "password": {"Secret123"}}}).
		expect(t, 200, "the password is unchanged after refused changes")

	updated := call(t, request{method: "PUT", url: me, token: f.token, body: map[string]any{"phone": "+1-555-0199"}}).expect(t, 200, "update me").object(t)
	if updated["phone"] != "+1-555-0199" || updated["first_name"] != "Test" {
		t.Errorf("partial update of me = %v", updated)
	}

	addr := f.users("/users/me/addresses")
	call(t, request{method: "POST", url: addr, token: f.token, body: map[string]any{"line1": "x"}}).expect(t, 422, "address without city")
	first := call(t, request{method: "POST", url: addr, token: f.token, body: shippingAddress()}).expect(t, 201, "first address").object(t)
	second := shippingAddress()
	second["is_default"] = true
	call(t, request{method: "POST", url: addr, token: f.token, body: second}).expect(t, 201, "second, default address")
	call(t, request{method: "POST", url: addr, token: f.token, body: shippingAddress()}).expect(t, 201, "third address")
	list := call(t, request{method: "GET", url: addr, token: f.token}).expect(t, 200, "addresses").list(t)
	defaults := []bool{}
	for _, a := range list {
		defaults = append(defaults, a["is_default"] == true)
	}
	if !slices.Equal(defaults, []bool{false, true, false}) {
		t.Errorf("defaults after adding a new default = %v, want [false true false]", defaults)
	}
	call(t, request{method: "GET", url: addr + "/" + num(t, first, "id"), token: f.token}).expect(t, 200, "read address")
}

// TestOrderRefusals: orders that must not be placed leave stock and orders
// untouched; illegal status changes are refused naming the allowed ones.
func TestOrderRefusals(t *testing.T) {
	f := newFixture(t)
	plenty := f.product("Plenty", 20, 100)
	scarce := f.product("Scarce", 5, 2)
	unknown := strings.Repeat("a", 24)

	for _, c := range []struct {
		name   string
		body   any
		status int
		detail string
		fields []string
	}{
		{"not enough stock", f.orderBody(item(plenty, 1, 20), item(scarce, 3, 5)), 400, "Insufficient stock for product " + scarce, nil},
		{"price mismatch", f.orderBody(item(plenty, 1, 19)), 400, "Price mismatch for product " + plenty, nil},
		{"unknown product", f.orderBody(item(unknown, 1, 1)), 400, "Product " + unknown + " not found", nil},
		{"another user's id", map[string]any{"user_id": 987654321, "shipping_address": shippingAddress(), "items": []any{item(plenty, 1, 20)}}, 403, "is not the authenticated user", nil},
		{"malformed JSON", `{"user_id": 1, "items": [`, 422, "", []string{"body"}},
		{"missing fields", map[string]any{"items": []any{}}, 422, "", []string{"body.items", "body.shipping_address"}},
		{"bad items", f.orderBody(map[string]any{"product_id": "nope", "quantity": 0, "price": -1}), 422, "",
			[]string{"body.items.0.product_id", "body.items.0.quantity", "body.items.0.price"}},
		{"wrong types", map[string]any{"user_id": true, "items": "many", "shipping_address": "here"}, 422, "",
			[]string{"body.user_id", "body.items", "body.shipping_address"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := call(t, request{method: "POST", url: f.orders("/orders/"), token: f.token, body: c.body}).expect(t, c.status, c.name)
			if c.detail != "" && !strings.Contains(resp.detail(t), c.detail) {
				t.Errorf("detail %q lacks %q", resp.detail(t), c.detail)
			}
			if c.fields != nil {
				if got := resp.fieldErrors(t); !slices.Equal(got, c.fields) {
					t.Errorf("422 names %v, want %v", got, c.fields)
				}
			}
		})
	}
	if a, r := f.stock(plenty); a != "100" || r != "0" {
		t.Errorf("plenty after refused orders: %s available, %s reserved; want 100 and 0 (a partial reservation was not released)", a, r)
	}
	if a, r := f.stock(scarce); a != "2" || r != "0" {
		t.Errorf("scarce after refused orders: %s available, %s reserved; want 2 and 0", a, r)
	}
	if n := f.orderCount(); n != 0 {
		t.Errorf("%d orders stored after only refused ones", n)
	}

	placed := call(t, request{method: "POST", url: f.orders("/orders/"), token: f.token, body: f.orderBody(item(scarce, 2, 5))}).expect(t, 201, "order").object(t)
	id := str(t, placed, "_id")
	status := f.orders("/orders/" + id + "/status")
	admin := f.s.adminToken
	if detail := call(t, request{method: "PUT", url: status, token: admin, body: map[string]any{"status": "shipped"}}).expect(t, 400, "pending to shipped").detail(t); !strings.Contains(detail, "allowed: paid, cancelled") {
		t.Errorf("illegal transition detail = %q", detail)
	}
	call(t, request{method: "PUT", url: status, token: admin, body: map[string]any{"status": "teleported"}}).expect(t, 422, "unknown status")
	call(t, request{method: "PUT", url: status, token: admin, body: `{"status":`}).expect(t, 422, "malformed status body")
	call(t, request{method: "DELETE", url: f.orders("/orders/" + id), token: f.token}).expect(t, 204, "cancel by DELETE")
	if a, r := f.stock(scarce); a != "2" || r != "0" {
		t.Errorf("scarce after cancelling: %s available, %s reserved; want 2 and 0", a, r)
	}
	if detail := call(t, request{method: "PUT", url: status, token: admin, body: map[string]any{"status": "paid"}}).expect(t, 400, "cancelled to paid").detail(t); !strings.Contains(detail, "cancelled is final") {
		t.Errorf("transition from cancelled detail = %q", detail)
	}
	if detail := call(t, request{method: "DELETE", url: f.orders("/orders/" + id), token: f.token}).expect(t, 400, "cancel twice").detail(t); !strings.Contains(detail, "cannot be cancelled") {
		t.Errorf("second cancel detail = %q", detail)
	}
	if a, r := f.stock(scarce); a != "2" || r != "0" {
		t.Errorf("scarce after refused second cancel: %s available, %s reserved; want 2 and 0", a, r)
	}

	// A shipped order can no longer be cancelled; its stock stays with it.
	shipped := str(t, call(t, request{method: "POST", url: f.orders("/orders"), token: f.token, body: f.orderBody(item(plenty, 4, 20))}).expect(t, 201, "order").object(t), "_id")
	for _, next := range []string{"paid", "processing", "shipped"} {
		call(t, request{method: "PUT", url: f.orders("/orders/" + shipped + "/status"), token: admin, body: map[string]any{"status": next}}).expect(t, 200, "to "+next)
	}
	call(t, request{method: "DELETE", url: f.orders("/orders/" + shipped), token: f.token}).expect(t, 400, "cancel a shipped order")
	if a, r := f.stock(plenty); a != "96" || r != "4" {
		t.Errorf("plenty after shipping 4: %s available, %s reserved; want 96 and 4", a, r)
	}
	filtered := call(t, request{method: "GET", url: f.orders("/orders/?status=shipped&user_id=" + f.userID), token: f.token}).expect(t, 200, "filter by status").list(t)
	if len(filtered) != 1 || str(t, filtered[0], "_id") != shipped {
		t.Errorf("shipped orders of the user = %v", filtered)
	}
	call(t, request{method: "GET", url: f.orders("/orders/?limit=0"), token: f.token}).expect(t, 422, "limit 0")
	call(t, request{method: "GET", url: f.products("/products/?limit=101")}).expect(t, 422, "limit 101")
}

// TestInventoryOperations: reserve, release, adjust and check, with their
// guards.
func TestInventoryOperations(t *testing.T) {
	f := newFixture(t)
	id := f.product("Stocked", 3, 10)
	post := func(path string, body any, status int) response {
		return call(t, request{method: "POST", url: f.inv(path), token: f.s.adminToken, body: body}).expect(t, status, "POST "+path)
	}
	post("/inventory/reserve", map[string]any{"product_id": id, "quantity": 0}, 422)
	post("/inventory/reserve", map[string]any{"product_id": id, "quantity": -2}, 422)
	post("/inventory/reserve", map[string]any{"product_id": id, "quantity": 11}, 400)
	post("/inventory/reserve", map[string]any{"product_id": id, "quantity": 4, "order_id": "manual"}, 200)
	post("/inventory/release", map[string]any{"product_id": id, "quantity": 5}, 400)
	post("/inventory/release", map[string]any{"product_id": id, "quantity": 1}, 200)
	post("/inventory/adjust", map[string]any{"product_id": id, "quantity_change": -8, "reason": "breakage"}, 400)
	post("/inventory/adjust", map[string]any{"product_id": id, "quantity_change": 5, "reason": "delivery", "reference_id": "PO-1"}, 200)
	post("/inventory/adjust", map[string]any{"product_id": id, "quantity_change": 0, "reason": "nothing"}, 422)
	post("/inventory/", map[string]any{"product_id": id, "available_quantity": 1}, 400)
	post("/inventory/", map[string]any{"product_id": strings.Repeat("b", 24), "available_quantity": 1}, 404)
	if a, r := f.stock(id); a != "12" || r != "3" {
		t.Errorf("stock = %s available, %s reserved; want 12 and 3", a, r)
	}
	check := call(t, request{method: "GET", url: f.inv("/inventory/check?product_id=" + id + "&quantity=13")}).expect(t, 200, "check").object(t)
	if check["available"] != false || num(t, check, "current_quantity") != "12" || num(t, check, "requested_quantity") != "13" {
		t.Errorf("check = %v", check)
	}
	call(t, request{method: "GET", url: f.inv("/inventory/check?quantity=1")}).expect(t, 422, "check without product")
	updated := call(t, request{method: "PUT", url: f.inv("/inventory/" + id), token: f.s.adminToken, body: map[string]any{"reorder_threshold": 20}}).expect(t, 200, "update").object(t)
	if num(t, updated, "reorder_threshold") != "20" || num(t, updated, "available_quantity") != "12" {
		t.Errorf("partial inventory update = %v", updated)
	}
	low := call(t, request{method: "GET", url: f.inv("/inventory/low-stock")}).expect(t, 200, "low stock").list(t)
	if !slices.ContainsFunc(low, func(it map[string]any) bool { return it["product_id"] == id }) {
		t.Errorf("product with 12 available and threshold 20 is not low on stock: %v", low)
	}
	history := call(t, request{method: "GET", url: f.inv("/inventory/history/" + id), token: f.s.adminToken}).expect(t, 200, "history").list(t)
	var kinds []string
	for _, h := range history {
		kinds = append(kinds, h["change_type"].(string))
	}
	if !slices.Equal(kinds, []string{"update", "adjust", "release", "reserve", "create"}) {
		t.Errorf("history kinds newest first = %v", kinds)
	}
}
