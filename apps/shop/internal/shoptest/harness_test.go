// Package shoptest runs the four shop services in-process against a real
// PostgreSQL started for the test run, and walks their API end to end.
package shoptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/weft-dev/weft/apps/shop/internal/auth"
	"github.com/weft-dev/weft/apps/shop/internal/db"
	"github.com/weft-dev/weft/apps/shop/internal/httpx"
	"github.com/weft-dev/weft/apps/shop/internal/inventory"
	"github.com/weft-dev/weft/apps/shop/internal/order"
	"github.com/weft-dev/weft/apps/shop/internal/pgstart"
	"github.com/weft-dev/weft/apps/shop/internal/product"
	"github.com/weft-dev/weft/apps/shop/internal/user"
)

const (
	pgBinDir   = "/usr/lib/postgresql/15/bin"
	pgUser     = "shop"
	pgPassword = "test-secret"
	jwtSecret  = "test-jwt-secret-0123456789"
	// The admin account user-service makes at start (ADMIN_EMAIL and
	// ADMIN_PASSWORD in a deployment).
	adminEmail    = "admin@shop.test"
	adminPassword = "Admin-Secret-123"
	// roleEnv makes the test binary act as `shop pg-start` when re-executed
	// as the postgres OS user.
	roleEnv = "SHOPTEST_ROLE"
)

// shop is the running system every test uses; TestMain sets it once before
// any test runs and never changes it afterwards.
var shop *testShop

type testShop struct {
	skipReason string
	pg         *postgresServer
	userURL    string
	productURL string
	invURL     string
	orderURL   string
	pools      []*db.Pool
	servers    []*httptest.Server
	productSvc *product.Service
	keys       *auth.Keys
	// adminToken is an access token of the admin account.
	adminToken string
	// compares counts user-service's password checks by password.
	compares passwordCompares
}

// passwordCompares wraps bcrypt's check and counts its calls per password
// and the cost of the hashes it was given, so a test can see that a login
// ran bcrypt, and at which cost, without timing it.
type passwordCompares struct {
	mu    sync.Mutex
	calls map[string][]int // password -> bcrypt cost of each hash compared
}

func (c *passwordCompares) compare(hash, password []byte) error {
	cost, costErr := bcrypt.Cost(hash)
	if costErr != nil {
		cost = -1
	}
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string][]int{}
	}
	c.calls[string(password)] = append(c.calls[string(password)], cost)
	c.mu.Unlock()
	return bcrypt.CompareHashAndPassword(hash, password)
}

// costs are the bcrypt costs of the hashes password was compared with.
func (c *passwordCompares) costs(password string) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.calls[password]...)
}

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "pg-start" {
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		err := pgstart.Main(context.Background(), log, nil)
		fmt.Fprintln(os.Stderr, "pg-start:", err)
		os.Exit(1)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	s := &testShop{}
	shop = s
	if _, err := os.Stat(filepath.Join(pgBinDir, "postgres")); err != nil {
		s.skipReason = fmt.Sprintf("PostgreSQL binaries not found in %s: install postgresql-15", pgBinDir)
		return m.Run()
	}
	defer s.close()
	if err := s.start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the shop for the tests:", err)
		if s.pg != nil {
			s.pg.dumpLog()
		}
		return 1
	}
	return m.Run()
}

func requireShop(t *testing.T) *testShop {
	t.Helper()
	if shop.skipReason != "" {
		t.Skip(shop.skipReason)
	}
	return shop
}

func (s *testShop) close() {
	for _, srv := range s.servers {
		srv.Close()
	}
	for _, p := range s.pools {
		p.Close()
	}
	if s.pg != nil {
		s.pg.stop()
	}
}

func (s *testShop) start() error {
	pg, err := startPostgres()
	s.pg = pg
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, pg.url("users"))
	if err != nil {
		return fmt.Errorf("connecting as %s: %w", pgUser, err)
	}
	defer admin.Close(ctx)
	for _, name := range []string{"products", "inventory", "orders"} {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return fmt.Errorf("creating database %s: %w", name, err)
		}
	}

	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	newPool := func(name string) (*db.Pool, error) {
		p, err := db.New(pg.url(name), 10)
		if err == nil {
			s.pools = append(s.pools, p)
		}
		return p, err
	}
	// Servers exist before their handlers, so services can know each
	// other's URLs (product and inventory call each other).
	newServer := func() *httptest.Server {
		srv := httptest.NewUnstartedServer(nil)
		s.servers = append(s.servers, srv)
		return srv
	}
	userSrv, productSrv, invSrv, orderSrv := newServer(), newServer(), newServer(), newServer()
	urlOf := func(srv *httptest.Server) string { return "http://" + srv.Listener.Addr().String() }
	s.userURL, s.productURL, s.invURL, s.orderURL = urlOf(userSrv), urlOf(productSrv), urlOf(invSrv), urlOf(orderSrv)
	upstream := func(name, env, baseURL string) *httpx.Upstream {
		u, err := httpx.NewUpstream(name, env, baseURL)
		if err != nil {
			panic(err)
		}
		return u
	}
	usersDB, err := newPool("users")
	if err != nil {
		return err
	}
	productsDB, err := newPool("products")
	if err != nil {
		return err
	}
	inventoryDB, err := newPool("inventory")
	if err != nil {
		return err
	}
	ordersDB, err := newPool("orders")
	if err != nil {
		return err
	}
	userSvc, err := user.New(usersDB, log, user.Config{
		JWTSecret: jwtSecret, AdminEmail: adminEmail, AdminPassword: adminPassword,
		ComparePassword: s.compares.compare,
	})
	if err != nil {
		return err
	}
	if s.keys, err = auth.NewKeys(jwtSecret); err != nil {
		return err
	}
	s.productSvc = product.New(productsDB, log, s.keys, upstream("inventory-service", "INVENTORY_SERVICE_URL", s.invURL))
	invSvc := inventory.New(inventoryDB, log, s.keys, upstream("product-service", "PRODUCT_SERVICE_URL", s.productURL))
	orderSvc := order.New(ordersDB, log, s.keys,
		upstream("user-service", "USER_SERVICE_URL", s.userURL),
		upstream("product-service", "PRODUCT_SERVICE_URL", s.productURL),
		upstream("inventory-service", "INVENTORY_SERVICE_URL", s.invURL))
	for _, migrate := range []func(context.Context) error{userSvc.Migrate, s.productSvc.Migrate, invSvc.Migrate, orderSvc.Migrate} {
		if err := migrate(ctx); err != nil {
			return err
		}
	}
	userSrv.Config.Handler = userSvc.Handler()
	productSrv.Config.Handler = s.productSvc.Handler()
	invSrv.Config.Handler = invSvc.Handler()
	orderSrv.Config.Handler = orderSvc.Handler()
	for _, srv := range s.servers {
		srv.Start()
	}
	login, err := send(request{method: "POST", url: s.userURL + "/api/v1/auth/login",
		form: url.Values{"username": {adminEmail}, "password": {adminPassword}}})
	if err != nil {
		return err
	}
	var tokens struct {
		AccessToken string `json:"access_token"`
	}
	if login.status != http.StatusOK || json.Unmarshal(login.body, &tokens) != nil || tokens.AccessToken == "" {
		return fmt.Errorf("logging in as the admin %s: %d %s", adminEmail, login.status, login.body)
	}
	s.adminToken = tokens.AccessToken
	return nil
}

// postgresServer is a PostgreSQL run by `shop pg-start` (this test binary
// re-executed) as the postgres OS user, on 127.0.0.1 and a free port.
type postgresServer struct {
	dir    string
	port   int
	binary string
	cred   *syscall.Credential
	cmd    *exec.Cmd
	exited chan struct{}
}

func startPostgres() (*postgresServer, error) {
	account, err := osuser.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("looking up the postgres OS user: %w", err)
	}
	uid, _ := strconv.ParseUint(account.Uid, 10, 32)
	gid, _ := strconv.ParseUint(account.Gid, 10, 32)
	dir, err := os.MkdirTemp("", fmt.Sprintf("shoptest-%d-", os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("creating the test directory: %w", err)
	}
	pg := &postgresServer{dir: dir, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return pg, fmt.Errorf("handing %s to postgres: %w", dir, err)
	}
	self, err := os.Executable()
	if err != nil {
		return pg, fmt.Errorf("finding the test binary: %w", err)
	}
	pg.binary = filepath.Join(dir, "shop-pg-start")
	if err := copyFile(self, pg.binary); err != nil {
		return pg, err
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return pg, fmt.Errorf("finding a free port: %w", err)
	}
	pg.port = listener.Addr().(*net.TCPAddr).Port
	listener.Close()
	return pg, pg.start()
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("reading %s: %w", from, err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", to, err)
	}
	return nil
}

func (pg *postgresServer) url(database string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", pgUser, pgPassword, pg.port, database)
}

// start runs pg-start and waits until the server accepts logins. Called
// again after kill, it must find and reuse the data directory.
func (pg *postgresServer) start() error {
	logFile, err := os.OpenFile(filepath.Join(pg.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening postgres log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(pg.binary)
	cmd.Dir = pg.dir
	cmd.Env = []string{
		roleEnv + "=pg-start",
		"PATH=/usr/bin:/bin",
		"TMPDIR=" + pg.dir,
		"PG_BIN_DIR=" + pgBinDir,
		"PGDATA=" + filepath.Join(pg.dir, "data"),
		"PGPORT=" + strconv.Itoa(pg.port),
		"PG_LISTEN_ADDRESSES=127.0.0.1",
		"POSTGRES_USER=" + pgUser,
		"POSTGRES_PASSWORD=" + pgPassword,
		"POSTGRES_DB=users",
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting pg-start: %w", err)
	}
	pg.cmd = cmd
	pg.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(pg.exited)
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, pg.url("users"))
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-pg.exited:
			return fmt.Errorf("pg-start exited: %s", pg.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept logins within 90s (%v): %s", err, pg.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill is what a crash does: SIGKILL to postgres and all its backends.
func (pg *postgresServer) kill() {
	if pg.cmd == nil {
		return
	}
	_ = syscall.Kill(-pg.cmd.Process.Pid, syscall.SIGKILL)
	<-pg.exited
	pg.cmd = nil
}

func (pg *postgresServer) stop() {
	if pg.cmd != nil {
		_ = pg.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-pg.exited:
		case <-time.After(15 * time.Second):
		}
		// Backends outlive a stuck postmaster only briefly, but a leftover
		// process is never acceptable.
		_ = syscall.Kill(-pg.cmd.Process.Pid, syscall.SIGKILL)
		<-pg.exited
		pg.cmd = nil
	}
	_ = os.RemoveAll(pg.dir)
}

func (pg *postgresServer) logTail() string {
	data, _ := os.ReadFile(filepath.Join(pg.dir, "postgres.log"))
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

func (pg *postgresServer) dumpLog() {
	fmt.Fprintln(os.Stderr, "postgres log:\n"+pg.logTail())
}

// response is an answer from a service.
type response struct {
	status int
	body   []byte
}

type request struct {
	method string
	url    string
	body   any // marshalled as JSON; a string or []byte is sent as-is
	token  string
	form   url.Values
	// header is sent as is, e.g. the X-Forwarded-For the gateway adds.
	header map[string]string
}

func call(t *testing.T, req request) response {
	t.Helper()
	resp, err := send(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// send is call for goroutines other than the test's, which must not stop
// the test themselves.
func send(req request) (response, error) {
	var reader io.Reader
	contentType := ""
	switch body := req.body.(type) {
	case nil:
	case string:
		reader, contentType = strings.NewReader(body), "application/json"
	case []byte:
		reader, contentType = bytes.NewReader(body), "application/json"
	default:
		encoded, err := json.Marshal(body)
		if err != nil {
			return response{}, fmt.Errorf("encoding request body: %w", err)
		}
		reader, contentType = bytes.NewReader(encoded), "application/json"
	}
	if req.form != nil {
		reader, contentType = strings.NewReader(req.form.Encode()), "application/x-www-form-urlencoded"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, req.method, req.url, reader)
	if err != nil {
		return response{}, fmt.Errorf("building %s %s: %w", req.method, req.url, err)
	}
	if contentType != "" {
		httpReq.Header.Set("Content-Type", contentType)
	}
	if req.token != "" {
		httpReq.Header.Set("Authorization", "Bearer "+req.token)
	}
	for k, v := range req.header {
		httpReq.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", req.method, req.url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("reading answer to %s %s: %w", req.method, req.url, err)
	}
	return response{status: resp.StatusCode, body: data}, nil
}

// expect fails the test unless the answer has the status; it returns the
// answer for further checks.
func (r response) expect(t *testing.T, status int, what string) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body: %s", what, r.status, status, r.body)
	}
	return r
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	decoder := json.NewDecoder(bytes.NewReader(r.body))
	decoder.UseNumber()
	if err := decoder.Decode(&v); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.body)
	}
	return v
}

func (r response) list(t *testing.T) []map[string]any {
	t.Helper()
	var v []map[string]any
	decoder := json.NewDecoder(bytes.NewReader(r.body))
	decoder.UseNumber()
	if err := decoder.Decode(&v); err != nil {
		t.Fatalf("answer is not a JSON list of objects: %v: %s", err, r.body)
	}
	return v
}

// detail is the "detail" string of an error answer.
func (r response) detail(t *testing.T) string {
	t.Helper()
	detail, ok := r.object(t)["detail"].(string)
	if !ok {
		t.Fatalf("answer has no string detail: %s", r.body)
	}
	return detail
}

// fieldErrors are the locations named by a 422 answer, as "body.price".
func (r response) fieldErrors(t *testing.T) []string {
	t.Helper()
	var v struct {
		Detail []httpx.FieldError `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || len(v.Detail) == 0 {
		t.Fatalf("answer is not a validation error list: %v: %s", err, r.body)
	}
	var locs []string
	for _, f := range v.Detail {
		parts := make([]string, len(f.Loc))
		for i, p := range f.Loc {
			parts[i] = fmt.Sprint(p)
		}
		if f.Msg == "" || f.Type == "" {
			t.Errorf("field error %v lacks msg or type: %s", f.Loc, r.body)
		}
		locs = append(locs, strings.Join(parts, "."))
	}
	return locs
}

func str(t *testing.T, v map[string]any, key string) string {
	t.Helper()
	s, ok := v[key].(string)
	if !ok {
		t.Fatalf("field %q is not a string in %v", key, v)
	}
	return s
}

func num(t *testing.T, v map[string]any, key string) string {
	t.Helper()
	n, ok := v[key].(json.Number)
	if !ok {
		t.Fatalf("field %q is not a number in %v", key, v)
	}
	return n.String()
}

// uniqueSuffix keeps each test's names apart from the others' in the shared
// databases.
func uniqueSuffix() string {
	return httpx.NewObjectID()[:8]
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
