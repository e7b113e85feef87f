// Package user is the user-service: accounts, login with JWTs, addresses,
// and the verify call other services use.
package user

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/weft-dev/weft/apps/shop/internal/auth"
	"github.com/weft-dev/weft/apps/shop/internal/db"
	"github.com/weft-dev/weft/apps/shop/internal/httpx"
	"github.com/weft-dev/weft/apps/shop/internal/service"
)

const (
	accessTokenLifetime  = 30 * time.Minute
	refreshTokenLifetime = 7 * 24 * time.Hour
)

var migrations = []string{
	`CREATE TABLE IF NOT EXISTS users (
		id BIGSERIAL PRIMARY KEY,
		email TEXT NOT NULL UNIQUE,
		password_hash TEXT NOT NULL,
		first_name TEXT NOT NULL,
		last_name TEXT NOT NULL,
		phone TEXT,
		is_active BOOLEAN NOT NULL DEFAULT TRUE,
		created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
		updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`,
	`CREATE TABLE IF NOT EXISTS addresses (
		id BIGSERIAL PRIMARY KEY,
		user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		line1 TEXT NOT NULL,
		line2 TEXT,
		city TEXT NOT NULL,
		state TEXT NOT NULL,
		postal_code TEXT NOT NULL,
		country TEXT NOT NULL,
		is_default BOOLEAN NOT NULL DEFAULT FALSE,
		created_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS addresses_one_default ON addresses (user_id) WHERE is_default`,
	`ALTER TABLE users ADD COLUMN IF NOT EXISTS role TEXT NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin'))`,
}

// Config is the user-service's configuration (from env in cmd/shop).
type Config struct {
	// JWTSecret signs the tokens (JWT_SECRET, shared with the other services).
	JWTSecret string
	// AdminEmail and AdminPassword (ADMIN_EMAIL, ADMIN_PASSWORD), when set,
	// make or update the admin account before the API is served.
	AdminEmail, AdminPassword string
	// Login limits failed logins per email and per client address within
	// the window; zero values take the defaults.
	Login LoginLimits
	// ComparePassword checks a password against a bcrypt hash; nil is
	// bcrypt.CompareHashAndPassword. Tests wrap it to see that every login
	// runs it.
	ComparePassword func(hash, password []byte) error
	// Now is the clock of the login limits; nil is time.Now.
	Now func() time.Time
}

// LoginLimits bound failed logins: once a key reached its maximum within
// Window, logins for it answer 429 until the oldest failure leaves it.
type LoginLimits struct {
	PerEmail   int           // LOGIN_MAX_FAILURES_PER_EMAIL, default 10
	PerAddress int           // LOGIN_MAX_FAILURES_PER_ADDRESS, default 100
	Window     time.Duration // LOGIN_FAILURE_WINDOW, default 15m
}

// DefaultLoginLimits are the limits of a zero LoginLimits.
var DefaultLoginLimits = LoginLimits{PerEmail: 10, PerAddress: 100, Window: 15 * time.Minute}

// Service is the user-service.
type Service struct {
	*service.Base
	keys            *auth.Keys
	comparePassword func(hash, password []byte) error
	// dummyHash is compared against when the email is unknown, so a login
	// costs one bcrypt whether or not the account exists.
	dummyHash  []byte
	perEmail   *failureLimiter
	perAddress *failureLimiter
}

// New builds the service.
func New(pool *db.Pool, log *slog.Logger, cfg Config) (*Service, error) {
	keys, err := auth.NewKeys(cfg.JWTSecret)
	if err != nil {
		return nil, err
	}
	limits := cfg.Login
	if limits.PerEmail == 0 {
		limits.PerEmail = DefaultLoginLimits.PerEmail
	}
	if limits.PerAddress == 0 {
		limits.PerAddress = DefaultLoginLimits.PerAddress
	}
	if limits.Window == 0 {
		limits.Window = DefaultLoginLimits.Window
	}
	if limits.PerEmail < 0 || limits.PerAddress < 0 || limits.Window < 0 {
		return nil, errors.New("login limits must be positive (LOGIN_MAX_FAILURES_PER_EMAIL, LOGIN_MAX_FAILURES_PER_ADDRESS, LOGIN_FAILURE_WINDOW)")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	compare := cfg.ComparePassword
	if compare == nil {
		compare = bcrypt.CompareHashAndPassword
	}
	random := make([]byte, 32)
	_, _ = rand.Read(random)
	dummy, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(random)[:64]), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("making the dummy password hash: %w", err)
	}
	s := &Service{
		Base:            service.NewBase("user-service", pool, log, migrations),
		keys:            keys,
		comparePassword: compare,
		dummyHash:       dummy,
		perEmail:        newFailureLimiter(limits.PerEmail, limits.Window, now),
		perAddress:      newFailureLimiter(limits.PerAddress, limits.Window, now),
	}
	if cfg.AdminEmail != "" || cfg.AdminPassword != "" {
		setup, err := s.adminSetup(cfg.AdminEmail, cfg.AdminPassword)
		if err != nil {
			return nil, err
		}
		s.Setup = setup
	}
	return s, nil
}

// adminSetup returns the step that makes the admin account: created with
// the admin role if the email is free, its password brought in line with
// ADMIN_PASSWORD if it is already the admin. An email that belongs to a
// customer is not promoted (whoever registered it would become admin): the
// error is logged and the shop runs without that admin.
func (s *Service) adminSetup(rawEmail, password string) (func(context.Context, db.Querier) error, error) {
	email, ok := normalizeEmail(rawEmail)
	if !ok {
		return nil, fmt.Errorf("ADMIN_EMAIL=%q is not an email address (set both ADMIN_EMAIL and ADMIN_PASSWORD, or neither)", rawEmail)
	}
	if !strongPassword(password) {
		return nil, errors.New("ADMIN_PASSWORD: " + passwordRule)
	}
	return func(ctx context.Context, q db.Querier) error {
		var (
			id   int64
			role string
			hash string
		)
		err := q.QueryRow(ctx, `SELECT id, role, password_hash FROM users WHERE email = $1`, email).Scan(&id, &role, &hash)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			newHash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
			if err != nil {
				return fmt.Errorf("hashing ADMIN_PASSWORD: %w", err)
			}
			if _, err := q.Exec(ctx, `INSERT INTO users (email, password_hash, first_name, last_name, role) VALUES ($1, $2, 'Shop', 'Admin', 'admin')`,
				email, string(newHash)); err != nil {
				return fmt.Errorf("creating the admin account %s: %w", email, err)
			}
			s.Log.Info("admin account created", "email", email)
			return nil
		case err != nil:
			return fmt.Errorf("looking up the admin account %s: %w", email, err)
		case role != auth.RoleAdmin:
			s.Log.Error("ADMIN_EMAIL belongs to an existing customer account, which is not promoted: choose another ADMIN_EMAIL, or promote it in the database (UPDATE users SET role = 'admin' WHERE email = ...)",
				"email", email, "user_id", id)
			return nil
		case bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil:
			newHash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
			if err != nil {
				return fmt.Errorf("hashing ADMIN_PASSWORD: %w", err)
			}
			if _, err := q.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1`, id, string(newHash)); err != nil {
				return fmt.Errorf("setting the admin password of %s: %w", email, err)
			}
			s.Log.Info("admin password set from ADMIN_PASSWORD", "email", email)
		}
		return nil
	}, nil
}

// Handler is the service's HTTP API.
func (s *Service) Handler() http.Handler {
	rt := s.NewRouter()
	rt.Handle("POST /api/v1/auth/register", s.register)
	rt.Handle("POST /api/v1/auth/login", s.login)
	rt.Handle("POST /api/v1/auth/refresh", s.refresh)
	rt.Handle("GET /api/v1/users/me", s.authenticated(s.getMe))
	rt.Handle("PUT /api/v1/users/me", s.authenticated(s.updateMe))
	rt.Handle("PUT /api/v1/users/me/password", s.authenticated(s.changePassword))
	rt.Handle("GET /api/v1/users/me/addresses", s.authenticated(s.listAddresses))
	rt.Handle("POST /api/v1/users/me/addresses", s.authenticated(s.addAddress))
	rt.Handle("GET /api/v1/users/me/addresses/{id}", s.authenticated(s.getAddress))
	rt.Handle("GET /internal/v1/users/{id}/verify", auth.InternalOnly(s.verify))
	return rt.Handler()
}

// User is the public view of an account.
type User struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	FirstName string    `json:"first_name"`
	LastName  string    `json:"last_name"`
	Phone     *string   `json:"phone"`
	Role      string    `json:"role"`
	IsActive  bool      `json:"is_active"`
	CreatedAt time.Time `json:"created_at"`
	Addresses []Address `json:"addresses"`
}

// Address is a shipping address of a user.
type Address struct {
	ID         int64     `json:"id"`
	Line1      string    `json:"line1"`
	Line2      *string   `json:"line2"`
	City       string    `json:"city"`
	State      string    `json:"state"`
	PostalCode string    `json:"postal_code"`
	Country    string    `json:"country"`
	IsDefault  bool      `json:"is_default"`
	CreatedAt  time.Time `json:"created_at"`
}

const passwordRule = "Password must have at least 8 characters, with an upper-case letter, a lower-case letter and a digit"

// strongPassword tells whether password follows passwordRule.
func strongPassword(password string) bool {
	var upper, lower, digit bool
	for _, r := range password {
		upper = upper || unicode.IsUpper(r)
		lower = lower || unicode.IsLower(r)
		digit = digit || unicode.IsDigit(r)
	}
	return len([]rune(password)) >= 8 && upper && lower && digit && len(password) <= 72
}

func normalizeEmail(raw string) (string, bool) {
	address, err := mail.ParseAddress(raw)
	if err != nil || address.Address != raw || !strings.Contains(raw[strings.LastIndex(raw, "@"):], ".") {
		return "", false
	}
	return strings.ToLower(raw), true
}

func (s *Service) register(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	emailRaw, hasEmail := body.String("email", true, 254)
	password, hasPassword := body.String("password", true, 0)
	firstName, _ := body.String("first_name", true, 100)
	lastName, _ := body.String("last_name", true, 100)
	phone, hasPhone := body.String("phone", false, 30)
	email, validEmail := normalizeEmail(emailRaw)
	if hasEmail && !validEmail {
		body.Fail("email", "value is not a valid email address", "value_error")
	}
	if hasPassword && !strongPassword(password) {
		body.Fail("password", passwordRule, "value_error")
	}
	if err := body.Err(); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hashing password: %w", err)
	}
	var phoneValue *string
	if hasPhone && phone != "" {
		phoneValue = &phone
	}
	user := User{Email: email, FirstName: firstName, LastName: lastName, Phone: phoneValue, Role: auth.RoleCustomer, IsActive: true, Addresses: []Address{}}
	err = s.DB.Do(r.Context(), func(q db.Querier) error {
		return q.QueryRow(r.Context(),
			`INSERT INTO users (email, password_hash, first_name, last_name, phone) VALUES ($1, $2, $3, $4, $5)
			 RETURNING id, created_at`,
			email, string(hash), firstName, lastName, phoneValue).Scan(&user.ID, &user.CreatedAt)
	})
	if db.IsUniqueViolation(err) {
		return httpx.Errorf(http.StatusBadRequest, "Email already registered")
	}
	if err != nil {
		return fmt.Errorf("creating user %s: %w", email, err)
	}
	httpx.WriteJSON(w, http.StatusCreated, user)
	return nil
}

// TokenPair is what login and refresh answer.
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
}

func (s *Service) issuePair(userID int64, role string) (TokenPair, error) {
	access, err := s.keys.Sign(userID, role, auth.TypeAccess, accessTokenLifetime)
	if err != nil {
		return TokenPair{}, err
	}
	refresh, err := s.keys.Sign(userID, role, auth.TypeRefresh, refreshTokenLifetime)
	if err != nil {
		return TokenPair{}, err
	}
	return TokenPair{AccessToken: access, RefreshToken: refresh, TokenType: "bearer"}, nil
}

// Bounds of the login limiter's keys.
const (
	maxEmailLength      = 254
	maxAddressKeyLength = 64
)

// tooManyFailures is the 429 answer of a blocked login.
func tooManyFailures(w http.ResponseWriter, wait time.Duration) error {
	seconds := int64(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(max(seconds, 1), 10))
	return httpx.Errorf(http.StatusTooManyRequests, "Too many failed logins: try again in %d s", max(seconds, 1))
}

func (s *Service) login(w http.ResponseWriter, r *http.Request) error {
	var username, password string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		body, err := httpx.DecodeObject(r)
		if err != nil {
			return err
		}
		username, _ = body.String("username", !body.Has("email"), maxEmailLength)
		if username == "" {
			username, _ = body.String("email", false, maxEmailLength)
		}
		password, _ = body.String("password", true, 0)
		if err := body.Err(); err != nil {
			return err
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return httpx.Invalid("Could not parse the form body: "+err.Error(), "value_error", "body")
		}
		username, password = strings.TrimSpace(r.PostForm.Get("username")), r.PostForm.Get("password")
		var missing []httpx.FieldError
		for name, value := range map[string]string{"username": username, "password": password} {
			if value == "" {
				missing = append(missing, httpx.FieldError{Loc: []any{"body", name}, Msg: "Field required (form-encoded username and password)", Type: "missing"})
			}
		}
		if len(username) > maxEmailLength {
			missing = append(missing, httpx.FieldError{Loc: []any{"body", "username"}, Msg: fmt.Sprintf("String should have at most %d characters", maxEmailLength), Type: "string_too_long"})
		}
		if len(missing) > 0 {
			return &httpx.ValidationError{Fields: missing}
		}
	}
	// Both keys are bounded: the email by the checks above, the address
	// (a header an internal caller could fill) here.
	emailKey, addressKey := strings.ToLower(username), auth.ClientAddress(r)
	if len(addressKey) > maxAddressKeyLength {
		addressKey = addressKey[:maxAddressKeyLength]
	}
	emailWait, emailBlocked := s.perEmail.Blocked(emailKey)
	addressWait, addressBlocked := s.perAddress.Blocked(addressKey)
	if emailBlocked || addressBlocked {
		return tooManyFailures(w, max(emailWait, addressWait))
	}
	var (
		id       int64
		hash     string
		role     string
		isActive bool
	)
	err := s.DB.Do(r.Context(), func(q db.Querier) error {
		return q.QueryRow(r.Context(), `SELECT id, password_hash, role, is_active FROM users WHERE email = $1`,
			emailKey).Scan(&id, &hash, &role, &isActive)
	})
	known := err == nil
	if errors.Is(err, pgx.ErrNoRows) {
		// An unknown email costs the same bcrypt as a known one, so the
		// answer's timing does not tell which emails have accounts.
		hash = string(s.dummyHash)
	} else if err != nil {
		return fmt.Errorf("looking up user %s: %w", username, err)
	}
	if s.comparePassword([]byte(hash), []byte(password)) != nil || !known {
		s.perEmail.Fail(emailKey)
		s.perAddress.Fail(addressKey)
		return auth.Unauthorized(w, "Incorrect email or password")
	}
	s.perEmail.Forget(emailKey)
	if !isActive {
		return httpx.Errorf(http.StatusForbidden, "User account is inactive")
	}
	pair, err := s.issuePair(id, role)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, pair)
	return nil
}

func (s *Service) refresh(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	token, _ := body.String("refresh_token", true, 0)
	if err := body.Err(); err != nil {
		return err
	}
	p, refusal := s.keys.Parse(token, auth.TypeRefresh)
	if refusal != "" {
		return auth.Unauthorized(w, refusal)
	}
	user, err := s.loadUser(r.Context(), p.UserID)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Unauthorized(w, "User no longer exists")
	}
	if err != nil {
		return err
	}
	if !user.IsActive {
		return httpx.Errorf(http.StatusForbidden, "User account is inactive")
	}
	// The new tokens carry the account's role as it is now.
	pair, err := s.issuePair(user.ID, user.Role)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, pair)
	return nil
}

type userIDKey struct{}

// authenticated lets h run only with a valid access token of an active user.
func (s *Service) authenticated(h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.keys.Authenticate(w, r)
		if err != nil {
			return err
		}
		id := p.UserID
		user, err := s.loadUser(r.Context(), id)
		if errors.Is(err, pgx.ErrNoRows) {
			return auth.Unauthorized(w, "User no longer exists")
		}
		if err != nil {
			return err
		}
		if !user.IsActive {
			return httpx.Errorf(http.StatusForbidden, "User account is inactive")
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), userIDKey{}, id)))
	}
}

func currentUserID(r *http.Request) int64 {
	id, _ := r.Context().Value(userIDKey{}).(int64)
	return id
}

// loadUser reads a user with addresses; pgx.ErrNoRows when unknown.
func (s *Service) loadUser(ctx context.Context, id int64) (User, error) {
	user := User{ID: id}
	err := s.DB.Do(ctx, func(q db.Querier) error {
		err := q.QueryRow(ctx,
			`SELECT email, first_name, last_name, phone, role, is_active, created_at FROM users WHERE id = $1`, id,
		).Scan(&user.Email, &user.FirstName, &user.LastName, &user.Phone, &user.Role, &user.IsActive, &user.CreatedAt)
		if err != nil {
			return err
		}
		user.Addresses, err = queryAddresses(ctx, q, `WHERE user_id = $1 ORDER BY id`, id)
		return err
	})
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return user, fmt.Errorf("loading user %d: %w", id, err)
	}
	return user, err
}

func queryAddresses(ctx context.Context, q db.Querier, where string, args ...any) ([]Address, error) {
	rows, err := q.Query(ctx,
		`SELECT id, line1, line2, city, state, postal_code, country, is_default, created_at FROM addresses `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("querying addresses: %w", err)
	}
	addresses, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Address, error) {
		var a Address
		err := row.Scan(&a.ID, &a.Line1, &a.Line2, &a.City, &a.State, &a.PostalCode, &a.Country, &a.IsDefault, &a.CreatedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading addresses: %w", err)
	}
	return addresses, nil
}

func (s *Service) getMe(w http.ResponseWriter, r *http.Request) error {
	user, err := s.loadUser(r.Context(), currentUserID(r))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, user)
	return nil
}

func (s *Service) updateMe(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	firstName, hasFirst := body.String("first_name", false, 100)
	lastName, hasLast := body.String("last_name", false, 100)
	phone, hasPhone := body.String("phone", false, 30)
	if hasFirst && firstName == "" {
		body.Fail("first_name", "String should have at least 1 character", "string_too_short")
	}
	if hasLast && lastName == "" {
		body.Fail("last_name", "String should have at least 1 character", "string_too_short")
	}
	if err := body.Err(); err != nil {
		return err
	}
	id := currentUserID(r)
	err = s.DB.Do(r.Context(), func(q db.Querier) error {
		_, err := q.Exec(r.Context(), `UPDATE users SET
			first_name = CASE WHEN $2 THEN $3 ELSE first_name END,
			last_name = CASE WHEN $4 THEN $5 ELSE last_name END,
			phone = CASE WHEN $6 THEN NULLIF($7, '') ELSE phone END,
			updated_at = now()
			WHERE id = $1`, id, hasFirst, firstName, hasLast, lastName, hasPhone, phone)
		return err
	})
	if err != nil {
		return fmt.Errorf("updating user %d: %w", id, err)
	}
	return s.getMe(w, r)
}

func (s *Service) changePassword(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	current, _ := body.String("current_password", true, 0)
	next, hasNext := body.String("new_password", true, 0)
	if err := body.Err(); err != nil {
		return err
	}
	if hasNext && !strongPassword(next) {
		return httpx.Invalid(passwordRule, "value_error", "body", "new_password")
	}
	id := currentUserID(r)
	var hash string
	if err := s.DB.Do(r.Context(), func(q db.Querier) error {
		return q.QueryRow(r.Context(), `SELECT password_hash FROM users WHERE id = $1`, id).Scan(&hash)
	}); err != nil {
		return fmt.Errorf("reading password of user %d: %w", id, err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(current)) != nil {
		return httpx.Errorf(http.StatusBadRequest, "Incorrect current password")
	}
	newHash, err := bcrypt.GenerateFromPassword([]byte(next), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hashing password: %w", err)
	}
	if err := s.DB.Do(r.Context(), func(q db.Querier) error {
		_, err := q.Exec(r.Context(), `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1`, id, string(newHash))
		return err
	}); err != nil {
		return fmt.Errorf("storing password of user %d: %w", id, err)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"detail": "Password updated"})
	return nil
}

func (s *Service) listAddresses(w http.ResponseWriter, r *http.Request) error {
	var addresses []Address
	err := s.DB.Do(r.Context(), func(q db.Querier) error {
		var err error
		addresses, err = queryAddresses(r.Context(), q, `WHERE user_id = $1 ORDER BY id`, currentUserID(r))
		return err
	})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, addresses)
	return nil
}

func (s *Service) addAddress(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.DecodeObject(r)
	if err != nil {
		return err
	}
	var a Address
	a.Line1, _ = body.String("line1", true, 200)
	if line2, ok := body.String("line2", false, 200); ok && line2 != "" {
		a.Line2 = &line2
	}
	a.City, _ = body.String("city", true, 100)
	a.State, _ = body.String("state", true, 100)
	a.PostalCode, _ = body.String("postal_code", true, 20)
	a.Country, _ = body.String("country", true, 100)
	wantDefault, _ := body.Bool("is_default", false)
	if err := body.Err(); err != nil {
		return err
	}
	userID := currentUserID(r)
	err = s.DB.Tx(r.Context(), func(q db.Querier) error {
		// Serialises address changes of this user, so "first address becomes
		// the default" holds under concurrent requests.
		if _, err := q.Exec(r.Context(), `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
			return err
		}
		var existing int
		if err := q.QueryRow(r.Context(), `SELECT count(*) FROM addresses WHERE user_id = $1`, userID).Scan(&existing); err != nil {
			return err
		}
		a.IsDefault = wantDefault || existing == 0
		if a.IsDefault {
			if _, err := q.Exec(r.Context(), `UPDATE addresses SET is_default = FALSE WHERE user_id = $1 AND is_default`, userID); err != nil {
				return err
			}
		}
		return q.QueryRow(r.Context(),
			`INSERT INTO addresses (user_id, line1, line2, city, state, postal_code, country, is_default)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, created_at`,
			userID, a.Line1, a.Line2, a.City, a.State, a.PostalCode, a.Country, a.IsDefault).Scan(&a.ID, &a.CreatedAt)
	})
	if err != nil {
		return fmt.Errorf("adding address for user %d: %w", userID, err)
	}
	httpx.WriteJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Service) getAddress(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return httpx.Errorf(http.StatusBadRequest, "Invalid address id %q: expected a positive integer", r.PathValue("id"))
	}
	var addresses []Address
	err = s.DB.Do(r.Context(), func(q db.Querier) error {
		addresses, err = queryAddresses(r.Context(), q, `WHERE user_id = $1 AND id = $2`, currentUserID(r), id)
		return err
	})
	if err != nil {
		return err
	}
	if len(addresses) == 0 {
		return httpx.Errorf(http.StatusNotFound, "Address %d not found", id)
	}
	httpx.WriteJSON(w, http.StatusOK, addresses[0])
	return nil
}

// Verification is what other services learn about a user id. It is served
// only to callers inside the cluster (auth.InternalOnly): it names emails.
type Verification struct {
	Valid    bool   `json:"valid"`
	UserID   int64  `json:"user_id,omitempty"`
	Email    string `json:"email,omitempty"`
	FullName string `json:"full_name,omitempty"`
}

func (s *Service) verify(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		httpx.WriteJSON(w, http.StatusOK, Verification{Valid: false})
		return nil
	}
	user, err := s.loadUser(r.Context(), id)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !user.IsActive) {
		httpx.WriteJSON(w, http.StatusOK, Verification{Valid: false})
		return nil
	}
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, Verification{
		Valid: true, UserID: user.ID, Email: user.Email, FullName: user.FirstName + " " + user.LastName,
	})
	return nil
}
