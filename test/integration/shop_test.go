package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/compose"
	"github.com/weft-dev/weft/internal/image"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/runtime"
	"github.com/weft-dev/weft/internal/spec"
)

// shopAPI is a client of the shop through the published loopback port, as
// a user with curl or Postman would use it.
type shopAPI struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

type reply struct {
	code int
	body map[string]any
	list []any
	raw  string
}

func (a *shopAPI) do(method, path string, body any) reply {
	a.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case url.Values:
		rd = strings.NewReader(b.Encode())
		ctype = "application/x-www-form-urlencoded"
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{code: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	_ = json.Unmarshal(raw, &r.list)
	return r
}

func (a *shopAPI) want(r reply, code int, what string) reply {
	a.t.Helper()
	if r.code != code {
		a.t.Fatalf("%s: status %d, want %d: %s", what, r.code, code, r.raw)
	}
	return r
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// shopCluster writes examples/shop/weft.yaml as a cluster of its own:
// unique name, the shop's image built, and its ports (the gateways', the
// registry's) free ones, returned as gateway and registry.
func shopCluster(t *testing.T, prefix string) (c cluster, gateway, registry int) {
	t.Helper()
	buildShopImages(t)
	src, err := os.ReadFile(filepath.Join(repoDir, "examples/shop/weft.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	gateway, registry = freePort(t), freePort(t)
	name := uniqueName(prefix)
	body := strings.NewReplacer(
		"\nname: shop\n", "\nname: "+name+"\n", // the cluster's name, not the VIP's
		"../../bin/shop", shopBin,
		"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", gateway),
		"127.0.0.1:5000", fmt.Sprintf("127.0.0.1:%d", registry),
	).Replace(string(src))
	return writeCluster(t, name, body), gateway, registry
}

// TestShop brings up the shop (two gateways, four services from the
// cluster's registry, four PostgreSQL databases on three hosts) and uses
// it through 127.0.0.1.
func TestShop(t *testing.T) {
	c, port, regPort := shopCluster(t, "sh")
	upCluster(t, c)
	api := &shopAPI{t: t, base: fmt.Sprintf("http://127.0.0.1:%d/api/v1", port), http: &http.Client{Timeout: 20 * time.Second}}
	admin := adminLogin(t, api, c.file)

	t.Run("names, not addresses", func(t *testing.T) { checkNamesNotAddresses(t, c.file) })
	t.Run("images from the cluster's registry", func(t *testing.T) { shopImages(t, c, regPort) })
	t.Run("the walk", func(t *testing.T) { shopWalk(t, api, admin) })
	t.Run("authorization through the gateway", func(t *testing.T) { shopAuthorization(t, api, admin) })
	t.Run("postman collection via newman", func(t *testing.T) {
		newman, err := exec.LookPath("newman")
		if err != nil {
			t.Fatalf("newman is not installed (make deps installs it with npm)")
		}
		out, err := exec.Command(newman, "run", filepath.Join(repoDir, "examples/shop/shop.postman_collection.json"),
			"--env-var", fmt.Sprintf("base_url=http://127.0.0.1:%d", port), "--bail", "--color", "off").CombinedOutput()
		if err != nil {
			t.Fatalf("newman: %v\n%s", err, out)
		}
	})
	t.Run("concurrent orders never oversell", func(t *testing.T) { shopConcurrency(t, api, admin) })
	t.Run("bad input", func(t *testing.T) { shopBadInput(t, api, admin) })
	t.Run("scale product-service 1-5-1 under load", func(t *testing.T) {
		scaleUnderLoad(t, c, fmt.Sprintf("http://127.0.0.1:%d/api/v1/products/", port), "product-service", 200)
	})
	t.Run("resilience", func(t *testing.T) { shopResilience(t, c, api) })
}

// loadClusterFile reads a cluster file as weft does: a docker compose
// file or a weft.yaml.
func loadClusterFile(t *testing.T, file string) *spec.Cluster {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c *spec.Cluster
	if compose.IsCompose(file, data) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err = compose.Load(ctx, file)
	} else {
		c, err = spec.Load(file)
	}
	if err != nil {
		t.Fatalf("loading %s: %v", file, err)
	}
	return c
}

func checkNamesNotAddresses(t *testing.T, file string) {
	c := loadClusterFile(t, file)
	for _, s := range c.Services {
		for k, v := range s.Env {
			for _, word := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune("/:@?=,", r) }) {
				if ip, err := netip.ParseAddr(word); err == nil && c.Overlay.CIDR.Contains(ip) {
					t.Errorf("service %s env %s holds the address %s: services must find each other by name", s.Name, k, ip)
				}
			}
		}
	}
}

type walkIDs struct {
	userID                   float64
	phone, headphones, watch string
	order1, order2           string
}

func registerAndLogin(t *testing.T, api *shopAPI, email string) float64 {
	u := api.want(api.do("POST", "/auth/register", map[string]any{
		"email": email, "password": "Secret123", "first_name": "Ada", "last_name": "Lovelace"}), 201, "register")
	tok := api.want(api.do("POST", "/auth/login", url.Values{"username": {email}, "password": {"Secret123"}}), 200, "login")
	api.token, _ = tok.body["access_token"].(string)
	if api.token == "" || tok.body["token_type"] != "bearer" {
		t.Fatalf("login answer: %s", tok.raw)
	}
	return num(u.body["id"])
}

// adminLogin logs in the admin account user-service makes from its
// ADMIN_EMAIL and ADMIN_PASSWORD in the cluster file.
func adminLogin(t *testing.T, api *shopAPI, file string) *shopAPI {
	c := loadClusterFile(t, file)
	var env map[string]string
	for _, s := range c.Services {
		if s.Name == "user-service" {
			env = s.Env
		}
	}
	if env["ADMIN_EMAIL"] == "" || env["ADMIN_PASSWORD"] == "" {
		t.Fatalf("user-service in %s has no ADMIN_EMAIL and ADMIN_PASSWORD", file)
	}
	admin := &shopAPI{t: t, base: api.base, http: api.http}
	tok := admin.want(admin.do("POST", "/auth/login", url.Values{"username": {env["ADMIN_EMAIL"]}, "password": {env["ADMIN_PASSWORD"]}}), 200, "admin login")
	admin.token, _ = tok.body["access_token"].(string)
	if me := admin.want(admin.do("GET", "/users/me", nil), 200, "admin me"); me.body["role"] != "admin" {
		t.Fatalf("the ADMIN_EMAIL account is not an admin: %s", me.raw)
	}
	return admin
}

// shopAuthorization: through the gateway, orders need a token and are the
// token's user's, writes need the admin, and verify is unreachable.
func shopAuthorization(t *testing.T, api *shopAPI, admin *shopAPI) {
	uid := registerAndLogin(t, api, "authz@example.com")
	anon := &shopAPI{t: t, base: api.base, http: api.http}
	p := admin.want(admin.do("POST", "/products/", map[string]any{"name": "Guarded", "description": "x", "category": "authz", "price": 3.0, "quantity": 5}), 201, "admin creates a product")
	pid := p.body["_id"].(string)
	ship := map[string]any{"line1": "x", "city": "x", "state": "x", "postal_code": "x", "country": "x"}
	order := func(userID any) map[string]any {
		return map[string]any{"user_id": userID, "shipping_address": ship, "items": []any{map[string]any{"product_id": pid, "quantity": 1, "price": 3.0}}}
	}
	anon.want(anon.do("POST", "/orders/", order(uid)), 401, "order without a token")
	api.want(api.do("POST", "/orders/", order(uid+1000)), 403, "order for another user")
	o := api.want(api.do("POST", "/orders/", order(uid)), 201, "order for oneself (order-service verified the user over the internal route)")
	oid := o.body["_id"].(string)
	api.want(api.do("POST", "/products/", map[string]any{"name": "x", "category": "authz", "price": 1.0, "quantity": 1}), 403, "customer creates a product")
	api.want(api.do("PUT", "/products/"+pid, map[string]any{"price": 0.01}), 403, "customer reprices a product")
	api.want(api.do("POST", "/inventory/adjust", map[string]any{"product_id": pid, "quantity_change": 100, "reason": "x"}), 403, "customer adjusts stock")
	api.want(api.do("POST", "/inventory/reserve", map[string]any{"product_id": pid, "quantity": 1}), 403, "customer reserves stock")
	api.want(api.do("PUT", "/orders/"+oid+"/status", map[string]any{"status": "paid"}), 403, "customer pays by status")
	anon.want(anon.do("PUT", "/orders/"+oid+"/status", map[string]any{"status": "paid"}), 401, "anonymous status change")
	admin.want(admin.do("PUT", "/orders/"+oid+"/status", map[string]any{"status": "paid"}), 200, "admin pays")
	if r := api.do("GET", "/users/"+fmt.Sprint(uid)+"/verify", nil); r.code != 404 || strings.Contains(r.raw, "authz@example.com") {
		t.Errorf("GET /api/v1/users/%v/verify through the gateway: %d %s, want 404 without the email", uid, r.code, r.raw)
	}
	// Failed logins through the gateway: the 11th answer for the email is
	// 429 with Retry-After (user-service's default limit is 10).
	for i := range 10 {
		anon.want(anon.do("POST", "/auth/login", url.Values{"username": {"authz@example.com"}, "password": {"Wrong123"}}), 401, fmt.Sprint("failed login ", i+1))
	}
	loginReq, err := http.NewRequest("POST", api.base+"/auth/login", strings.NewReader(url.Values{"username": {"authz@example.com"}, "password": {"Secret123"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	loginReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	limited, err := api.http.Do(loginReq)
	if err != nil {
		t.Fatal(err)
	}
	limited.Body.Close()
	if limited.StatusCode != http.StatusTooManyRequests || limited.Header.Get("Retry-After") == "" {
		t.Errorf("11th login after 10 failures: %d, Retry-After %q; want 429 with Retry-After", limited.StatusCode, limited.Header.Get("Retry-After"))
	}
	resp, err := api.http.Get(strings.TrimSuffix(api.base, "/api/v1") + "/internal/v1/users/" + fmt.Sprint(uid) + "/verify")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || strings.Contains(string(raw), "authz@example.com") {
		t.Errorf("GET /internal/v1/users/%v/verify through the gateway: %d %s, want 404", uid, resp.StatusCode, raw)
	}
}

func shopWalk(t *testing.T, api *shopAPI, admin *shopAPI) {
	var ids walkIDs
	ids.userID = registerAndLogin(t, api, "ada@example.com")
	me := api.want(api.do("GET", "/users/me", nil), 200, "me")
	if me.body["email"] != "ada@example.com" {
		t.Fatalf("me: %s", me.raw)
	}
	addr := map[string]any{"line1": "1 Analytical St", "city": "London", "state": "LDN", "postal_code": "N1", "country": "UK"}
	a := api.want(api.do("POST", "/users/me/addresses", addr), 201, "address")
	if a.body["is_default"] != true {
		t.Fatalf("first address should be the default: %s", a.raw)
	}
	mk := func(name, cat string, price float64, qty int) string {
		r := admin.want(admin.do("POST", "/products/", map[string]any{"name": name, "description": name, "category": cat, "price": price, "quantity": qty}), 201, "create "+name)
		id, _ := r.body["_id"].(string)
		if len(id) != 24 {
			t.Fatalf("product id %q", id)
		}
		return id
	}
	ids.phone = mk("Phone", "walk-phones", 899.99, 50)
	ids.headphones = mk("Headphones", "walk-audio", 249.99, 100)
	ids.watch = mk("Watch", "walk-wearables", 179.99, 75)
	if l := api.want(api.do("GET", "/products", nil), 200, "list"); len(l.list) < 3 {
		t.Fatalf("list: %s", l.raw)
	}
	if l := api.want(api.do("GET", "/products/?category=walk-audio", nil), 200, "filter"); len(l.list) != 1 {
		t.Fatalf("category filter: %s", l.raw)
	}
	if l := api.want(api.do("GET", "/products/?min_price=170&max_price=260&name=", nil), 200, "price"); len(l.list) < 2 {
		t.Fatalf("price filter: %s", l.raw)
	}
	inv := api.want(api.do("GET", "/inventory/"+ids.phone, nil), 200, "phone inventory")
	if num(inv.body["available_quantity"]) != 50 || num(inv.body["reserved_quantity"]) != 0 {
		t.Fatalf("phone inventory: %s", inv.raw)
	}
	ship := map[string]any{"line1": "1 Analytical St", "city": "London", "state": "LDN", "postal_code": "N1", "country": "UK"}
	o1 := api.want(api.do("POST", "/orders/", map[string]any{"user_id": ids.userID, "shipping_address": ship,
		"items": []any{map[string]any{"product_id": ids.phone, "quantity": 1, "price": 899.99}}}), 201, "order 1")
	o2 := api.want(api.do("POST", "/orders", map[string]any{"user_id": fmt.Sprint(ids.userID), "shipping_address": ship,
		"items": []any{
			map[string]any{"product_id": ids.headphones, "quantity": 1, "price": 249.99},
			map[string]any{"product_id": ids.watch, "quantity": 2, "price": 179.99}}}), 201, "order 2")
	if math.Abs(num(o2.body["total_price"])-609.97) > 0.001 || o2.body["status"] != "pending" {
		t.Fatalf("order 2: %s", o2.raw)
	}
	ids.order1, _ = o1.body["_id"].(string)
	ids.order2, _ = o2.body["_id"].(string)
	api.want(api.do("GET", "/orders/"+ids.order2, nil), 200, "read order 2")
	if l := api.want(api.do("GET", "/orders/", nil), 200, "list orders"); len(l.list) < 2 {
		t.Fatalf("orders: %s", l.raw)
	}
	admin.want(admin.do("PUT", "/orders/"+ids.order1+"/status", map[string]any{"status": "paid"}), 200, "pay order 1")
	admin.want(admin.do("PUT", "/orders/"+ids.order2+"/status", map[string]any{"status": "cancelled"}), 200, "cancel order 2")
	for id, want := range map[string][2]float64{ids.headphones: {100, 0}, ids.phone: {49, 1}, ids.watch: {75, 0}} {
		r := api.want(api.do("GET", "/inventory/"+id, nil), 200, "inventory")
		if num(r.body["available_quantity"]) != want[0] || num(r.body["reserved_quantity"]) != want[1] {
			t.Errorf("inventory of %s: %s, want %v", id, r.raw, want)
		}
	}
}

func shopConcurrency(t *testing.T, api *shopAPI, admin *shopAPI) {
	uid := registerAndLogin(t, api, "many@example.com")
	p := admin.want(admin.do("POST", "/products/", map[string]any{"name": "Scarce", "description": "x", "category": "scarce", "price": 10.0, "quantity": 20}), 201, "scarce")
	id := p.body["_id"].(string)
	ship := map[string]any{"line1": "x", "city": "x", "state": "x", "postal_code": "x", "country": "x"}
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(map[string]any{"user_id": uid, "shipping_address": ship,
				"items": []any{map[string]any{"product_id": id, "quantity": 1, "price": 10.0}}})
			req, err := http.NewRequest("POST", api.base+"/orders/", bytes.NewReader(b))
			if err != nil {
				codes[i] = -1
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+api.token)
			resp, err := api.http.Do(req)
			if err != nil {
				codes[i] = -1
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case 201:
			ok++
		case 400, 409:
		default:
			t.Errorf("unexpected status %d", c)
		}
	}
	if ok != 20 {
		t.Fatalf("%d orders succeeded, want exactly 20 (codes %v)", ok, codes)
	}
	inv := api.want(api.do("GET", "/inventory/"+id, nil), 200, "inventory")
	if num(inv.body["available_quantity"]) != 0 || num(inv.body["reserved_quantity"]) != 20 {
		t.Fatalf("inventory after the rush: %s", inv.raw)
	}
}

func shopBadInput(t *testing.T, api *shopAPI, admin *shopAPI) {
	registerAndLogin(t, api, "bad@example.com")
	customer := api
	api = admin // the product writes below are the admin's; the account ones anyone's
	before := api.want(api.do("GET", "/products/?limit=100", nil), 200, "list").list
	cases := []struct {
		method, path string
		body         any
		code         int
		detail       string
	}{
		{"POST", "/products/", `{"name": "x",`, 422, ""},
		{"POST", "/products/", map[string]any{"name": "x"}, 422, "price"},
		{"POST", "/products/", map[string]any{"name": "x", "description": "d", "category": "c", "price": "cheap", "quantity": 1}, 422, "price"},
		{"POST", "/products/", map[string]any{"name": "x", "description": "d", "category": "c", "price": -1, "quantity": 1}, 422, "price"},
		{"POST", "/products/", map[string]any{"name": "x", "description": "d", "category": "c", "price": 1, "quantity": -5}, 422, "quantity"},
		{"GET", "/products/not-an-id", nil, 400, ""},
		{"GET", "/products/0123456789abcdef01234567", nil, 404, ""},
		{"GET", "/orders/zzz", nil, 400, ""},
		{"POST", "/auth/register", map[string]any{"email": "weak@example.com", "password": "weak", "first_name": "a", "last_name": "b"}, 422, "password"},
		{"POST", "/auth/register", map[string]any{"email": "bad@example.com", "password": "Secret123", "first_name": "a", "last_name": "b"}, 400, "Email already registered"},
	}
	for _, tc := range cases {
		r := api.do(tc.method, tc.path, tc.body)
		if r.code != tc.code || (tc.detail != "" && !strings.Contains(r.raw, tc.detail)) || !strings.Contains(r.raw, "detail") {
			t.Errorf("%s %s %v: %d %s, want %d naming %q", tc.method, tc.path, tc.body, r.code, r.raw, tc.code, tc.detail)
		}
	}
	tok := customer.token
	customer.token = ""
	if r := customer.do("GET", "/users/me", nil); r.code != 401 {
		t.Errorf("no token: %d", r.code)
	}
	customer.token = tok + "x"
	if r := customer.do("GET", "/users/me", nil); r.code != 401 {
		t.Errorf("bad token: %d", r.code)
	}
	customer.token = tok
	// Illegal status transition.
	uid := num(customer.want(customer.do("GET", "/users/me", nil), 200, "me").body["id"])
	p := api.want(api.do("POST", "/products/", map[string]any{"name": "T", "description": "x", "category": "t", "price": 5.0, "quantity": 5}), 201, "p")
	o := customer.want(customer.do("POST", "/orders/", map[string]any{"user_id": uid, "shipping_address": map[string]any{"line1": "x", "city": "x", "state": "x", "postal_code": "x", "country": "x"},
		"items": []any{map[string]any{"product_id": p.body["_id"], "quantity": 1, "price": 5.0}}}), 201, "o")
	if r := api.do("PUT", "/orders/"+o.body["_id"].(string)+"/status", map[string]any{"status": "delivered"}); r.code != 400 || !strings.Contains(r.raw, "paid") {
		t.Errorf("pending -> delivered: %d %s", r.code, r.raw)
	}
	// A body over the gateway's limit.
	big := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	if r := api.do("POST", "/products/", big); r.code != 413 || !strings.Contains(r.raw, "detail") {
		t.Errorf("2 MiB body: %d %.200s", r.code, r.raw)
	}
	after := api.want(api.do("GET", "/products/?limit=100", nil), 200, "list").list
	if len(after) != len(before)+1 {
		t.Errorf("bad input changed the products: %d -> %d (one valid product was added)", len(before), len(after))
	}
}

func shopResilience(t *testing.T, c cluster, api *shopAPI) {
	st := c.status(t)
	// kill -9 product-service: requests resume by themselves.
	ps := find(t, st, "product-service-1")
	if err := syscall.Kill(ps.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "products answer again", func() error {
		resp, err := api.http.Get(api.base + "/products/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	// kill -9 one gateway: the published port keeps answering.
	gw := find(t, st, "gateway-1-1")
	stop := make(chan struct{})
	var failures, total int
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := api.http.Get(strings.TrimSuffix(api.base, "/api/v1") + "/health")
			mu.Lock()
			total++
			if err != nil || resp.StatusCode != 200 {
				failures++
			}
			mu.Unlock()
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(gw.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	<-done
	if total < 50 || failures > 1 {
		t.Fatalf("while gateway-1 died: %d of %d requests failed", failures, total)
	}
	// Restart a database container: its data is still there.
	db := find(t, c.status(t), "product-db-1")
	before := api.want(api.do("GET", "/products/?limit=100", nil), 200, "list").list
	if err := syscall.Kill(db.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "product-db back and the data with it", func() error {
		now := find(t, c.status(t), "product-db-1")
		if now.Pid == db.Pid || !now.Ready() {
			return fmt.Errorf("not restarted yet")
		}
		r := api.do("GET", "/products/?limit=100", nil)
		if r.code != 200 || len(r.list) != len(before) {
			return fmt.Errorf("status %d, %d products (had %d)", r.code, len(r.list), len(before))
		}
		return nil
	})
}

// shopImages checks that host1, which runs product-service and
// inventory-service from one image, unpacked it once, pulled from the
// cluster's registry, and that the registry is published on 127.0.0.1 for
// pushes (crane push).
func shopImages(t *testing.T, c cluster, regPort int) {
	store := &image.Store{Root: naming.ImageDir(naming.DefaultStateRoot, c.name, "host1")}
	lines, err := store.Unpacks()
	if err != nil {
		t.Fatal(err)
	}
	// In the cluster's user namespace, as every image service by default.
	tree := fmt.Sprintf("rootfs-%d", runtime.ClusterIDMap(c.name).HostBase)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], " "+tree+" registry:5000/shop/shop:v1") {
		t.Errorf("host1 runs product and inventory from one image and should have unpacked it once, from the registry, owned in the cluster's map (%s):\n%s", tree, strings.Join(lines, "\n"))
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v2/shop/shop/tags/list", regPort))
	if err != nil {
		t.Fatalf("the published registry: %v", err)
	}
	defer resp.Body.Close()
	tags, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(tags), `"v1"`) {
		t.Errorf("GET /v2/shop/shop/tags/list: %d %s", resp.StatusCode, tags)
	}
}
