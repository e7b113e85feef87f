package shoptest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/weft-dev/weft/apps/shop/internal/db"
	"github.com/weft-dev/weft/apps/shop/internal/user"
)

// viaGateway are the headers weft's gateway adds to what it forwards: a
// request carrying them is not from inside the cluster. Each test uses its
// own client address, so login limits of one never touch another.
func viaGateway(client string) map[string]string {
	return map[string]string{"X-Forwarded-For": client, "X-Forwarded-Host": "127.0.0.1:8080"}
}

// TestOrdersNeedAToken: every order route refuses a caller without a valid
// access token, and the token's user is the order's.
func TestOrdersNeedAToken(t *testing.T) {
	f := newFixture(t)
	productID := f.product("Tokened", 3, 10)
	body := map[string]any{"shipping_address": shippingAddress(), "items": []any{item(productID, 1, 3)}}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/orders/", body},
		{"GET", "/orders/", nil},
		{"GET", "/orders/user/" + f.userID, nil},
		{"GET", "/orders/" + strings.Repeat("0", 24), nil},
	} {
		for _, token := range []string{"", "garbage"} {
			resp := call(t, request{method: c.method, url: f.orders(c.path), body: c.body, token: token, header: viaGateway("198.51.100.1")}).
				expect(t, http.StatusUnauthorized, c.method+" "+c.path+" with token "+strconv.Quote(token))
			if !strings.Contains(string(resp.body), "detail") {
				t.Errorf("%s %s: 401 without a detail: %s", c.method, c.path, resp.body)
			}
		}
	}
	// A refused order reserved nothing.
	if a, r := f.stock(productID); a != "10" || r != "0" {
		t.Errorf("stock after orders without a token: %s available, %s reserved; want 10 and 0", a, r)
	}

	// Without user_id the order is the token's user's; the seed's body
	// with the user's own id (string or number) is accepted unchanged.
	placed := call(t, request{method: "POST", url: f.orders("/orders/"), token: f.token, body: body}).expect(t, 201, "order without user_id").object(t)
	if str(t, placed, "user_id") != f.userID {
		t.Errorf("order placed with %s's token belongs to %s", f.userID, str(t, placed, "user_id"))
	}
	for _, id := range []any{f.userID, mustAtoi(t, f.userID)} {
		call(t, request{method: "POST", url: f.orders("/orders/"), token: f.token, body: map[string]any{
			"user_id": id, "shipping_address": shippingAddress(), "items": []any{item(productID, 1, 3)},
		}}).expect(t, 201, "order with the user's own id")
	}

	// Another customer can neither order as, read, list nor cancel them.
	other := newFixture(t)
	detail := call(t, request{method: "POST", url: f.orders("/orders/"), token: other.token, body: f.orderBody(item(productID, 1, 3))}).
		expect(t, http.StatusForbidden, "order for another user's id").detail(t)
	if !strings.Contains(detail, "not the authenticated user") {
		t.Errorf("403 detail %q", detail)
	}
	id := str(t, placed, "_id")
	call(t, request{method: "GET", url: f.orders("/orders/" + id), token: other.token}).expect(t, 404, "read another's order")
	call(t, request{method: "DELETE", url: f.orders("/orders/" + id), token: other.token}).expect(t, 404, "cancel another's order")
	call(t, request{method: "GET", url: f.orders("/orders/?user_id=" + f.userID), token: other.token}).expect(t, 403, "list another's orders")
	call(t, request{method: "GET", url: f.orders("/orders/user/" + f.userID), token: other.token}).expect(t, 403, "orders of another user")
	if mine := call(t, request{method: "GET", url: f.orders("/orders/?limit=100"), token: other.token}).expect(t, 200, "own orders").list(t); len(mine) != 0 {
		t.Errorf("a customer without orders lists %d orders", len(mine))
	}
	if n := f.orderCount(); n != 3 {
		t.Errorf("the user has %d orders, want 3", n)
	}
	// The admin sees them.
	call(t, request{method: "GET", url: f.orders("/orders/" + id), token: f.s.adminToken}).expect(t, 200, "admin reads any order")
	if all := call(t, request{method: "GET", url: f.orders("/orders/user/" + f.userID), token: f.s.adminToken}).expect(t, 200, "admin lists a user's orders").list(t); len(all) != 3 {
		t.Errorf("admin lists %d orders of the user, want 3", len(all))
	}
	// The owner cancels their own pending order.
	call(t, request{method: "DELETE", url: f.orders("/orders/" + id), token: f.token}).expect(t, 204, "cancel own order")

	// A valid token of a user that does not exist (deleted) places nothing:
	// order-service asks user-service, over its internal route.
	ghost, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "987654321", "type": "access", "exp": time.Now().Add(time.Minute).Unix(),
	}).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	if detail := call(t, request{method: "POST", url: f.orders("/orders/"), token: ghost, body: body}).expect(t, 400, "order of an unknown user").detail(t); !strings.Contains(detail, "User 987654321 not found") {
		t.Errorf("unknown user detail %q", detail)
	}
}

// TestWritesNeedAdmin: catalogue, stock and status writes refuse a customer
// (403) and an anonymous caller through the gateway (401); the admin and
// callers inside the cluster may.
func TestWritesNeedAdmin(t *testing.T) {
	f := newFixture(t)
	productID := f.product("Guarded", 4, 10)
	order := str(t, call(t, request{method: "POST", url: f.orders("/orders/"), token: f.token, body: f.orderBody(item(productID, 1, 4))}).
		expect(t, 201, "order").object(t), "_id")
	newProduct := map[string]any{"name": "Sneaky " + f.suffix, "category": f.category(), "price": 1, "quantity": 1}
	writes := []struct {
		method, url string
		body        any
		okStatus    int
	}{
		{"POST", f.products("/products/"), newProduct, 201},
		{"PUT", f.products("/products/" + productID), map[string]any{"price": 4}, 200},
		{"POST", f.inv("/inventory/adjust"), map[string]any{"product_id": productID, "quantity_change": 1, "reason": "count"}, 200},
		{"PUT", f.inv("/inventory/" + productID), map[string]any{"reorder_threshold": 3}, 200},
		{"POST", f.inv("/inventory/reserve"), map[string]any{"product_id": productID, "quantity": 1}, 200},
		{"POST", f.inv("/inventory/release"), map[string]any{"product_id": productID, "quantity": 1}, 200},
		{"GET", f.inv("/inventory/history/" + productID), nil, 200},
		{"PUT", f.orders("/orders/" + order + "/status"), map[string]any{"status": "paid"}, 200},
	}
	for _, w := range writes {
		what := w.method + " " + strings.TrimPrefix(w.url, "http://")
		call(t, request{method: w.method, url: w.url, body: w.body, token: f.token}).expect(t, http.StatusForbidden, what+" as a customer")
		call(t, request{method: w.method, url: w.url, body: w.body, token: f.token, header: viaGateway("198.51.100.2")}).
			expect(t, http.StatusForbidden, what+" as a customer through the gateway")
		call(t, request{method: w.method, url: w.url, body: w.body, header: viaGateway("198.51.100.2")}).
			expect(t, http.StatusUnauthorized, what+" without a token through the gateway")
	}
	call(t, request{method: "DELETE", url: f.products("/products/" + productID), token: f.token}).expect(t, http.StatusForbidden, "delete a product as a customer")
	got := call(t, request{method: "GET", url: f.products("/products/" + productID)}).expect(t, 200, "product").object(t)
	if num(t, got, "price") != "4.00" {
		t.Errorf("price after refused writes = %s, want 4.00", num(t, got, "price"))
	}
	if a, r := f.stock(productID); a != "9" || r != "1" {
		t.Errorf("stock after refused writes: %s available, %s reserved; want 9 and 1", a, r)
	}
	if o := call(t, request{method: "GET", url: f.orders("/orders/" + order), token: f.token}).expect(t, 200, "order").object(t); o["status"] != "pending" {
		t.Errorf("order status after a customer's refused change = %v", o["status"])
	}

	// The admin, through the gateway, may do each.
	for _, w := range writes {
		call(t, request{method: w.method, url: w.url, body: w.body, token: f.s.adminToken, header: viaGateway("198.51.100.2")}).
			expect(t, w.okStatus, w.method+" "+w.url+" as the admin")
	}
	// A caller inside the cluster without a token may too: product-service
	// creating the stock row, order-service reserving, a payment job
	// setting an order paid.
	id := str(t, call(t, request{method: "POST", url: f.products("/products/"), body: map[string]any{
		"name": "Internal " + f.suffix, "category": f.category(), "price": 2, "quantity": 3,
	}}).expect(t, 201, "internal product create").object(t), "_id")
	if a, _ := f.stock(id); a != "3" {
		t.Errorf("stock row made by product-service for an internal create: %s available, want 3", a)
	}
	call(t, request{method: "PUT", url: f.orders("/orders/" + order + "/status"), body: map[string]any{"status": "processing"}}).
		expect(t, 200, "internal status change")
}

// TestVerifyIsInternal: the verify call, which names a user's email, answers
// only callers inside the cluster; through the gateway it does not exist.
func TestVerifyIsInternal(t *testing.T) {
	f := newFixture(t)
	internal := f.s.userURL + "/internal/v1/users/" + f.userID + "/verify"
	v := call(t, request{method: "GET", url: internal}).expect(t, 200, "internal verify").object(t)
	if v["valid"] != true || v["email"] != f.email {
		t.Errorf("internal verify = %v", v)
	}
	for _, c := range []struct {
		url    string
		header map[string]string
	}{
		{internal, viaGateway("198.51.100.3")},
		{internal, map[string]string{"X-Forwarded-For": "198.51.100.3"}},
		{internal, map[string]string{"Forwarded": "for=198.51.100.3"}},
		{f.users("/users/" + f.userID + "/verify"), nil},
		{f.users("/users/" + f.userID + "/verify"), viaGateway("198.51.100.3")},
	} {
		resp := call(t, request{method: "GET", url: c.url, token: f.token, header: c.header}).expect(t, 404, "verify "+c.url+" with "+strings.Join(mapKeys(c.header), ","))
		if strings.Contains(string(resp.body), f.email) {
			t.Errorf("%s answered with the email: %s", c.url, resp.body)
		}
	}
}

func mapKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestAdminAccount: the account made from ADMIN_EMAIL and ADMIN_PASSWORD is
// an admin, its email cannot be registered again, and a refresh keeps the
// role; a registered user is a customer.
func TestAdminAccount(t *testing.T) {
	f := newFixture(t)
	me := call(t, request{method: "GET", url: f.users("/users/me"), token: f.s.adminToken}).expect(t, 200, "admin me").object(t)
	if me["role"] != "admin" || me["email"] != adminEmail {
		t.Errorf("admin account = %v", me)
	}
	if me := call(t, request{method: "GET", url: f.users("/users/me"), token: f.token}).expect(t, 200, "me").object(t); me["role"] != "customer" {
		t.Errorf("registered user's role = %v, want customer", me["role"])
	}
	call(t, request{method: "POST", url: f.users("/auth/register"), body: map[string]any{
		"email": adminEmail, "password": "Secret123", "first_name": "Mal", "last_name": "Lory",
	}}).expect(t, 400, "register the admin's email")
	tokens := call(t, request{method: "POST", url: f.users("/auth/login"), form: url.Values{"username": {adminEmail}, "password": {adminPassword}},
		header: viaGateway("198.51.100.4")}).expect(t, 200, "admin login").object(t)
	refreshed := call(t, request{method: "POST", url: f.users("/auth/refresh"), body: map[string]any{"refresh_token": tokens["refresh_token"]}}).
		expect(t, 200, "admin refresh").object(t)
	call(t, request{method: "PUT", url: f.products("/products/" + f.product("Refreshed", 1, 1)), token: str(t, refreshed, "access_token"),
		body: map[string]any{"price": 2}}).expect(t, 200, "write with a refreshed admin token")
}

// TestLoginAlwaysRunsBcrypt: a login for an unknown email compares the
// password with a bcrypt hash of the same cost as a real account's, so the
// answer takes as long as a wrong password for a known one. Counted with a
// hook on the comparison, not timed.
func TestLoginAlwaysRunsBcrypt(t *testing.T) {
	f := newFixture(t)
	login := func(email, password string) {
		call(t, request{method: "POST", url: f.users("/auth/login"), form: url.Values{"username": {email}, "password": {password}},
			header: viaGateway("198.51.100.5")}).expect(t, http.StatusUnauthorized, "login "+email)
	}
	unknownPassword, wrongPassword := "Unknown-"+f.suffix, "Wrong-"+f.suffix
	login("nobody-"+f.suffix+"@example.com", unknownPassword)
	login(f.email, wrongPassword)
	unknown, wrong := f.s.compares.costs(unknownPassword), f.s.compares.costs(wrongPassword)
	if !slices.Equal(unknown, []int{bcrypt.DefaultCost}) {
		t.Errorf("an unknown email's login compared with bcrypt costs %v, want one at cost %d", unknown, bcrypt.DefaultCost)
	}
	if !slices.Equal(wrong, unknown) {
		t.Errorf("a known email's wrong password compared with costs %v, an unknown email's with %v: the work differs", wrong, unknown)
	}
}

// TestLoginRateLimit runs a user-service with small limits and its own
// clock: failures per email and per client address answer 429 with
// Retry-After once the limit is reached, until the window moves on.
func TestLoginRateLimit(t *testing.T) {
	f := newFixture(t)
	pool, err := db.New(f.s.pg.url("users"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	svc, err := user.New(pool, slog.New(slog.NewJSONHandler(io.Discard, nil)), user.Config{
		JWTSecret: jwtSecret,
		Login:     user.LoginLimits{PerEmail: 3, PerAddress: 5, Window: time.Minute},
		Now:       clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	login := func(email, password, client string) response {
		return call(t, request{method: "POST", url: srv.URL + "/api/v1/auth/login",
			form: url.Values{"username": {email}, "password": {password}}, header: viaGateway(client)})
	}
	retryAfter := func(resp response, what string) {
		t.Helper()
		resp.expect(t, http.StatusTooManyRequests, what)
		if !strings.Contains(resp.detail(t), "Too many failed logins") {
			t.Errorf("%s: 429 detail %q", what, resp.detail(t))
		}
	}

	// Per email: 3 failures from different addresses, then even the right
	// password is refused, from any address.
	for i := range 3 {
		login(f.email, "Wrong123", "203.0.113."+strconv.Itoa(10+i)).expect(t, 401, "failure "+strconv.Itoa(i+1))
	}
	blocked := login(f.email, "Secret123", "203.0.113.20")
	retryAfter(blocked, "4th login of the email")
	seconds, err := strconv.Atoi(blockedHeader(t, srv.URL, f.email))
	if err != nil || seconds < 1 || seconds > 60 {
		t.Errorf("Retry-After = %q, want 1..60 seconds", blockedHeader(t, srv.URL, f.email))
	}
	advance(61 * time.Second)
	login(f.email, "Secret123", "203.0.113.20").expect(t, 200, "login after the window")
	// A success clears the email's count.
	for i := range 2 {
		login(f.email, "Wrong123", "203.0.113.30").expect(t, 401, "failure after success "+strconv.Itoa(i+1))
	}
	login(f.email, "Secret123", "203.0.113.31").expect(t, 200, "login under the limit")

	// Per address: 5 failures for different emails from one address block
	// that address for every email, and no other address.
	for i := range 5 {
		login("nobody-"+strconv.Itoa(i)+"-"+f.suffix+"@example.com", "Wrong123", "203.0.113.40").expect(t, 401, "address failure "+strconv.Itoa(i+1))
	}
	retryAfter(login(f.email, "Secret123", "203.0.113.40"), "6th login from the address")
	// The address is the gateway's last hop: a client cannot pick a fresh
	// one by sending its own X-Forwarded-For.
	spoofed := call(t, request{method: "POST", url: srv.URL + "/api/v1/auth/login",
		form:   url.Values{"username": {f.email}, "password": {"Secret123"}},
		header: map[string]string{"X-Forwarded-For": "192.0.2.99, 203.0.113.40"}})
	retryAfter(spoofed, "login with a client-chosen first hop")
	login(f.email, "Secret123", "203.0.113.41").expect(t, 200, "login from another address")

	// The limiter's keys are bounded: an over-long username is refused
	// before it is counted.
	login(strings.Repeat("x", 300)+"@example.com", "Wrong123", "203.0.113.50").expect(t, 422, "over-long username")
}

// blockedHeader is the Retry-After of a login refused for email.
func blockedHeader(t *testing.T, base, email string) string {
	t.Helper()
	form := url.Values{"username": {email}, "password": {"Secret123"}}
	req, err := http.NewRequest("POST", base+"/api/v1/auth/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "203.0.113.21")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("login of a blocked email answered %d, want 429", resp.StatusCode)
	}
	return resp.Header.Get("Retry-After")
}

// TestAdminSetup: ADMIN_EMAIL and ADMIN_PASSWORD make the admin account on a
// fresh email, bring its password back to ADMIN_PASSWORD on a later start,
// and never promote an email a customer registered first.
func TestAdminSetup(t *testing.T) {
	f := newFixture(t)
	pool, err := db.New(f.s.pg.url("users"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	start := func(email, password string) *httptest.Server {
		t.Helper()
		svc, err := user.New(pool, slog.New(slog.NewJSONHandler(io.Discard, nil)), user.Config{
			JWTSecret: jwtSecret, AdminEmail: email, AdminPassword: password,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(svc.Handler())
		t.Cleanup(srv.Close)
		return srv
	}
	login := func(srv *httptest.Server, email, password string) response {
		return call(t, request{method: "POST", url: srv.URL + "/api/v1/auth/login",
			form: url.Values{"username": {email}, "password": {password}}, header: viaGateway("203.0.113.80")})
	}
	role := func(srv *httptest.Server, tokens response) any {
		token := str(t, tokens.object(t), "access_token")
		return call(t, request{method: "GET", url: srv.URL + "/api/v1/users/me", token: token}).expect(t, 200, "me").object(t)["role"]
	}

	email := "boss-" + f.suffix + "@example.com"
	first := start(email, "First-Admin-1")
	if r := role(first, login(first, email, "First-Admin-1").expect(t, 200, "new admin logs in")); r != "admin" {
		t.Errorf("account made from ADMIN_EMAIL has role %v", r)
	}
	second := start(email, "Second-Admin-2")
	login(second, email, "First-Admin-1").expect(t, 401, "the old ADMIN_PASSWORD")
	login(second, email, "Second-Admin-2").expect(t, 200, "the new ADMIN_PASSWORD")

	// The fixture's customer registered first: not promoted, password kept.
	taken := start(f.email, "Takeover-Admin-3")
	login(taken, f.email, "Takeover-Admin-3").expect(t, 401, "ADMIN_PASSWORD on a customer's email")
	if r := role(taken, login(taken, f.email, "Secret123").expect(t, 200, "the customer's own password")); r != "customer" {
		t.Errorf("a customer's email named as ADMIN_EMAIL became %v", r)
	}

	for _, bad := range []user.Config{
		{JWTSecret: jwtSecret, AdminEmail: "not-an-email", AdminPassword: "Good-Pass-1"},
		{JWTSecret: jwtSecret, AdminEmail: email, AdminPassword: "weak"},
		{JWTSecret: jwtSecret, AdminEmail: email},
		{JWTSecret: jwtSecret, AdminPassword: "Good-Pass-1"},
	} {
		if _, err := user.New(pool, slog.New(slog.NewJSONHandler(io.Discard, nil)), bad); err == nil {
			t.Errorf("user.New accepted admin email %q, password %q", bad.AdminEmail, bad.AdminPassword)
		}
	}
}
