package shoptest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestShopWalk is the user's whole walk: account, products, orders, and the
// stock figures that follow from paying one order and cancelling another.
func TestShopWalk(t *testing.T) {
	s := requireShop(t)
	suffix := uniqueSuffix()
	api := func(base string) func(string) string {
		return func(path string) string { return base + "/api/v1" + path }
	}
	users, products, inv, orders := api(s.userURL), api(s.productURL), api(s.invURL), api(s.orderURL)

	for name, base := range map[string]string{"user": s.userURL, "product": s.productURL, "inventory": s.invURL, "order": s.orderURL} {
		health := call(t, request{method: "GET", url: base + "/health"}).expect(t, 200, name+" health").object(t)
		if health["status"] != "ok" || health["service"] != name+"-service" {
			t.Errorf("%s health = %v", name, health)
		}
	}

	email := "walker-" + suffix + "@example.com"
	registered := call(t, request{method: "POST", url: users("/auth/register"), body: map[string]any{
		"email": email, "password": "Secret123", "first_name": "Wal", "last_name": "Ker", "phone": "+1-555-0100",
	}}).expect(t, 201, "register").object(t)
	userID := num(t, registered, "id")
	if str(t, registered, "email") != email || registered["is_active"] != true {
		t.Errorf("registered user = %v", registered)
	}
	if addresses, ok := registered["addresses"].([]any); !ok || len(addresses) != 0 {
		t.Errorf("new user's addresses = %v, want []", registered["addresses"])
	}

	tokens := call(t, request{method: "POST", url: users("/auth/login"), form: url.Values{"username": {email}, "password": {"Secret123"}}}).
		expect(t, 200, "login").object(t)
	if tokens["token_type"] != "bearer" || str(t, tokens, "refresh_token") == "" {
		t.Errorf("login answer = %v", tokens)
	}
	token := str(t, tokens, "access_token")

	me := call(t, request{method: "GET", url: users("/users/me"), token: token}).expect(t, 200, "me").object(t)
	if num(t, me, "id") != userID || str(t, me, "email") != email {
		t.Errorf("me = %v, want id %s", me, userID)
	}

	address := map[string]any{"line1": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701", "country": "US"}
	first := call(t, request{method: "POST", url: users("/users/me/addresses"), token: token, body: address}).expect(t, 201, "add address").object(t)
	if first["is_default"] != true {
		t.Errorf("first address is not the default: %v", first)
	}

	createProduct := func(name, category, price string, quantity int) map[string]any {
		body := `{"name":"` + name + `","description":"` + name + ` of the walk","category":"` + category +
			`","price":` + price + `,"quantity":` + itoa(quantity) + `}`
		p := call(t, request{method: "POST", url: products("/products/"), token: s.adminToken, body: body}).expect(t, 201, "create "+name).object(t)
		if id := str(t, p, "_id"); len(id) != 24 {
			t.Errorf("product id %q is not 24 hex characters", id)
		}
		if num(t, p, "price") != price {
			t.Errorf("%s price = %s, want %s", name, num(t, p, "price"), price)
		}
		return p
	}
	electronics, wearables := "Electronics-"+suffix, "Wearables-"+suffix
	phone := createProduct("Phone "+suffix, electronics, "899.99", 50)
	headphones := createProduct("Headphones "+suffix, electronics, "249.99", 100)
	watch := createProduct("Watch "+suffix, wearables, "179.99", 75)
	phoneID, headphonesID, watchID := str(t, phone, "_id"), str(t, headphones, "_id"), str(t, watch, "_id")

	names := func(list []map[string]any) []string {
		var out []string
		for _, p := range list {
			out = append(out, str(t, p, "name"))
		}
		return out
	}
	byCategory := call(t, request{method: "GET", url: products("/products/?category=" + electronics)}).expect(t, 200, "filter by category").list(t)
	if got := names(byCategory); len(got) != 2 || got[0] != "Phone "+suffix || got[1] != "Headphones "+suffix {
		t.Errorf("category %s lists %v, want the phone and the headphones", electronics, got)
	}
	byPrice := call(t, request{method: "GET", url: products("/products?name=" + suffix + "&min_price=150&max_price=300")}).expect(t, 200, "filter by price").list(t)
	if got := names(byPrice); len(got) != 2 || got[0] != "Headphones "+suffix || got[1] != "Watch "+suffix {
		t.Errorf("price 150..300 lists %v, want the headphones and the watch", got)
	}
	all := call(t, request{method: "GET", url: products("/products?name=" + strings.ToUpper(suffix))}).expect(t, 200, "list without slash").list(t)
	if len(all) != 3 {
		t.Errorf("name filter %s lists %d products, want 3", suffix, len(all))
	}
	categories := call(t, request{method: "GET", url: products("/products/category/list")}).expect(t, 200, "categories")
	if !strings.Contains(string(categories.body), `"`+wearables+`"`) {
		t.Errorf("categories %s lack %s", categories.body, wearables)
	}

	stock := func(productID string) (available, reserved string) {
		item := call(t, request{method: "GET", url: inv("/inventory/" + productID)}).expect(t, 200, "inventory of "+productID).object(t)
		return num(t, item, "available_quantity"), num(t, item, "reserved_quantity")
	}
	phoneItem := call(t, request{method: "GET", url: inv("/inventory/" + phoneID)}).expect(t, 200, "phone inventory").object(t)
	if num(t, phoneItem, "available_quantity") != "50" || num(t, phoneItem, "reserved_quantity") != "0" || num(t, phoneItem, "reorder_threshold") != "5" {
		t.Errorf("phone inventory = %v, want 50 available, 0 reserved, threshold 5", phoneItem)
	}

	shipping := map[string]any{"line1": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701", "country": "US"}
	first1 := call(t, request{method: "POST", url: orders("/orders/"), token: token, body: map[string]any{
		"user_id": mustAtoi(t, userID), "shipping_address": shipping,
		"items": []map[string]any{{"product_id": phoneID, "quantity": 1, "price": 899.99}},
	}}).expect(t, 201, "first order").object(t)
	order1 := str(t, first1, "_id")
	if num(t, first1, "total_price") != "899.99" || first1["status"] != "pending" {
		t.Errorf("first order = %v", first1)
	}
	second := call(t, request{method: "POST", url: orders("/orders"), token: token, body: map[string]any{
		"user_id": userID, "shipping_address": shipping,
		"items": []map[string]any{
			{"product_id": headphonesID, "quantity": 1, "price": 249.99},
			{"product_id": watchID, "quantity": 2, "price": 179.99},
		},
	}}).expect(t, 201, "second order").object(t)
	order2 := str(t, second, "_id")
	if num(t, second, "total_price") != "609.97" {
		t.Errorf("second order total = %s, want 609.97", num(t, second, "total_price"))
	}
	if a, r := stock(headphonesID); a != "99" || r != "1" {
		t.Errorf("headphones after ordering: %s available, %s reserved; want 99 and 1", a, r)
	}

	read := call(t, request{method: "GET", url: orders("/orders/" + order2), token: token}).expect(t, 200, "read order").object(t)
	if str(t, read, "user_id") != userID || num(t, read, "total_price") != "609.97" || len(read["items"].([]any)) != 2 {
		t.Errorf("order read back = %v", read)
	}
	listed := call(t, request{method: "GET", url: orders("/orders/?user_id=" + userID), token: token}).expect(t, 200, "list orders").list(t)
	if len(listed) != 2 || str(t, listed[0], "_id") != order2 || str(t, listed[1], "_id") != order1 {
		t.Errorf("orders of user %s listed as %v, want newest first [%s %s]", userID, listed, order2, order1)
	}
	ofUser := call(t, request{method: "GET", url: orders("/orders/user/" + userID), token: token}).expect(t, 200, "orders of user").list(t)
	if len(ofUser) != 2 {
		t.Errorf("GET /orders/user/%s lists %d orders, want 2", userID, len(ofUser))
	}

	paid := call(t, request{method: "PUT", url: orders("/orders/" + order1 + "/status"), token: s.adminToken, body: map[string]any{"status": "paid"}}).
		expect(t, 200, "pay first order").object(t)
	if paid["status"] != "paid" {
		t.Errorf("paid order = %v", paid)
	}
	cancelled := call(t, request{method: "PUT", url: orders("/orders/" + order2 + "/status/"), token: s.adminToken, body: map[string]any{"status": "cancelled"}}).
		expect(t, 200, "cancel second order").object(t)
	if cancelled["status"] != "cancelled" {
		t.Errorf("cancelled order = %v", cancelled)
	}

	for _, want := range []struct {
		name, id, available, reserved string
	}{
		{"headphones", headphonesID, "100", "0"},
		{"watch", watchID, "75", "0"},
		{"phone", phoneID, "49", "1"},
	} {
		if a, r := stock(want.id); a != want.available || r != want.reserved {
			t.Errorf("%s: %s available, %s reserved; want %s and %s", want.name, a, r, want.available, want.reserved)
		}
	}
	history := call(t, request{method: "GET", url: inv("/inventory/history/" + phoneID), token: s.adminToken}).expect(t, 200, "phone history").list(t)
	if len(history) != 2 || history[0]["change_type"] != "reserve" || history[0]["reference_id"] != order1 {
		t.Errorf("phone history = %v, want a reserve for %s on top of the initial stock", history, order1)
	}

	refreshed := call(t, request{method: "POST", url: users("/auth/refresh"), body: map[string]any{"refresh_token": tokens["refresh_token"]}}).
		expect(t, 200, "refresh").object(t)
	call(t, request{method: "GET", url: users("/users/me"), token: str(t, refreshed, "access_token")}).expect(t, 200, "me with refreshed token")

	call(t, request{method: "PUT", url: users("/users/me/password"), token: token,
		body: map[string]any{"current_password": "Secret123", "new_password": "Better456"}}).expect(t, 200, "change password")
	call(t, request{method: "POST", url: users("/auth/login"), form: url.Values{"username": {email}, "password": {"Secret123"}}}).
		expect(t, http.StatusUnauthorized, "login with the old password")
	call(t, request{method: "POST", url: users("/auth/login"), form: url.Values{"username": {email}, "password": {"Better456"}}}).
		expect(t, 200, "login with the new password")
}
