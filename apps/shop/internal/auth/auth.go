// Package auth is how the shop's services decide who is calling: the access
// tokens user-service issues (HS256 JWTs with sub, exp, type and role, checked
// with the JWT_SECRET every service shares), and whether a request came from
// inside the cluster or through the gateway.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/weft-dev/weft/apps/shop/internal/httpx"
)

// Roles a token can carry. A token without a role claim (issued before roles
// existed) is a customer's.
const (
	RoleCustomer = "customer"
	RoleAdmin    = "admin"
)

// Token types.
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"
)

// MinSecretLength is the shortest JWT_SECRET accepted.
const MinSecretLength = 16

// Claims is what a shop token holds.
type Claims struct {
	Type string `json:"type"`
	Role string `json:"role,omitempty"`
	jwt.RegisteredClaims
}

// Principal is the caller a valid access token names.
type Principal struct {
	UserID int64
	Role   string
}

// IsAdmin tells whether the caller holds the admin role.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

// Subject is the user id as the token's sub claim writes it.
func (p Principal) Subject() string { return strconv.FormatInt(p.UserID, 10) }

// Keys signs and checks tokens with one HS256 secret.
type Keys struct {
	secret []byte
}

// NewKeys checks the secret (from JWT_SECRET) and returns the keys.
func NewKeys(secret string) (*Keys, error) {
	if len(secret) < MinSecretLength {
		return nil, fmt.Errorf("JWT_SECRET must be set to a secret of at least %d characters (the same value in every shop service)", MinSecretLength)
	}
	return &Keys{secret: []byte(secret)}, nil
}

// Sign issues a token of tokenType for a user with role, valid for lifetime.
func (k *Keys) Sign(userID int64, role, tokenType string, lifetime time.Duration) (string, error) {
	now := time.Now()
	claims := Claims{
		Type: tokenType,
		Role: role,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   strconv.FormatInt(userID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
		},
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(k.secret)
	if err != nil {
		return "", fmt.Errorf("signing %s token: %w", tokenType, err)
	}
	return signed, nil
}

// Parse checks signature, expiry and type, and returns the caller, or the
// reason the token is refused (shown to the client).
func (k *Keys) Parse(raw, wantType string) (p Principal, refusal string) {
	var claims Claims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return k.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired())
	if errors.Is(err, jwt.ErrTokenExpired) {
		return p, "Token has expired: log in again or use /api/v1/auth/refresh"
	}
	if err != nil {
		return p, "Could not validate credentials"
	}
	if claims.Type != wantType {
		return p, fmt.Sprintf("Invalid token type %q: expected a %s token", claims.Type, wantType)
	}
	id, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil || id < 1 {
		return p, "Could not validate credentials"
	}
	role := claims.Role
	switch role {
	case "":
		role = RoleCustomer
	case RoleCustomer, RoleAdmin:
	default:
		return p, "Could not validate credentials"
	}
	return Principal{UserID: id, Role: role}, ""
}

// Unauthorized is the 401 answer, with the WWW-Authenticate challenge.
func Unauthorized(w http.ResponseWriter, detail string) error {
	w.Header().Set("WWW-Authenticate", "Bearer")
	return httpx.Errorf(http.StatusUnauthorized, "%s", detail)
}

// bearer is the token of the Authorization header, or "".
func bearer(r *http.Request) string {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// Authenticate checks the request's bearer access token.
func (k *Keys) Authenticate(w http.ResponseWriter, r *http.Request) (Principal, error) {
	token := bearer(r)
	if token == "" {
		return Principal{}, Unauthorized(w, "Not authenticated: send Authorization: Bearer <access_token>")
	}
	p, refusal := k.Parse(token, TypeAccess)
	if refusal != "" {
		return Principal{}, Unauthorized(w, refusal)
	}
	return p, nil
}

type principalKey struct{}

// WithPrincipal stores the caller in ctx.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Caller is the authenticated caller of the request, if any.
func Caller(r *http.Request) (Principal, bool) {
	p, ok := r.Context().Value(principalKey{}).(Principal)
	return p, ok
}

// User lets h run only with a valid access token (any role); h finds the
// caller with Caller.
func (k *Keys) User(h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := k.Authenticate(w, r)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(WithPrincipal(r.Context(), p)))
	}
}

// AdminOrInternal lets h run for a caller inside the cluster (see Internal),
// or for one with an admin's access token; a customer gets 403.
func (k *Keys) AdminOrInternal(h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if Internal(r) && bearer(r) == "" {
			return h(w, r)
		}
		p, err := k.Authenticate(w, r)
		if err != nil {
			return err
		}
		if !p.IsAdmin() {
			return httpx.Errorf(http.StatusForbidden, "Not allowed: %s %s needs the admin role", r.Method, r.URL.Path)
		}
		return h(w, r.WithContext(WithPrincipal(r.Context(), p)))
	}
}

// InternalOnly lets h run only for callers inside the cluster; anything that
// came through the gateway gets 404, as if the route did not exist.
func InternalOnly(h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !Internal(r) {
			return httpx.Errorf(http.StatusNotFound, "Not Found")
		}
		return h(w, r)
	}
}

// proxyHeaders are the headers weft's gateway always sets on what it
// forwards (it replaces or extends any the client sent).
var proxyHeaders = []string{"X-Forwarded-For", "X-Forwarded-Host", "Forwarded"}

// Internal tells whether the request came from inside the cluster: the
// gateway adds X-Forwarded-For and X-Forwarded-Host to every request it
// forwards, so a request with neither was not forwarded by it. This is only
// as strong as the network: anything that can reach a service's port
// directly (any container on the overlay) counts as internal.
func Internal(r *http.Request) bool {
	for _, name := range proxyHeaders {
		if _, ok := r.Header[name]; ok {
			return false
		}
	}
	return true
}

// ClientAddress is the address of the client: for a request forwarded by the
// gateway, the last X-Forwarded-For hop (the one the gateway itself added;
// earlier hops are whatever the client chose to send), else the peer.
func ClientAddress(r *http.Request) string {
	if values := r.Header.Values("X-Forwarded-For"); len(values) > 0 {
		hops := strings.Split(values[len(values)-1], ",")
		if last := strings.TrimSpace(hops[len(hops)-1]); last != "" {
			return last
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
