package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/weft-dev/weft/apps/shop/internal/httpx"
)

const secret = "unit-test-secret-0123456789"

func mustKeys(t *testing.T) *Keys {
	t.Helper()
	k, err := NewKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKeysRefusesShortSecret(t *testing.T) {
	if _, err := NewKeys("short"); err == nil {
		t.Fatal("a 5-character JWT_SECRET was accepted")
	}
}

func TestParse(t *testing.T) {
	k := mustKeys(t)
	sign := func(claims jwt.MapClaims, key string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()
	admin, err := k.Sign(7, RoleAdmin, TypeAccess, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		token   string
		want    Principal
		refused bool
	}{
		{"signed admin token", admin, Principal{UserID: 7, Role: RoleAdmin}, false},
		{"no role claim is a customer", sign(jwt.MapClaims{"sub": "9", "type": "access", "exp": exp}, secret), Principal{UserID: 9, Role: RoleCustomer}, false},
		{"unknown role", sign(jwt.MapClaims{"sub": "9", "type": "access", "role": "root", "exp": exp}, secret), Principal{}, true},
		{"other secret", sign(jwt.MapClaims{"sub": "9", "type": "access", "role": "admin", "exp": exp}, "another-secret-0123456789"), Principal{}, true},
		{"refresh type", sign(jwt.MapClaims{"sub": "9", "type": "refresh", "exp": exp}, secret), Principal{}, true},
		{"no expiry", sign(jwt.MapClaims{"sub": "9", "type": "access"}, secret), Principal{}, true},
		{"expired", sign(jwt.MapClaims{"sub": "9", "type": "access", "exp": time.Now().Add(-time.Minute).Unix()}, secret), Principal{}, true},
		{"non-numeric subject", sign(jwt.MapClaims{"sub": "bob", "type": "access", "exp": exp}, secret), Principal{}, true},
		{"garbage", "not.a.token", Principal{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, refusal := k.Parse(c.token, TypeAccess)
			if (refusal != "") != c.refused || got != c.want {
				t.Errorf("Parse = %+v, %q; want %+v, refused %v", got, refusal, c.want, c.refused)
			}
		})
	}
}

func TestInternalAndClientAddress(t *testing.T) {
	for _, c := range []struct {
		name     string
		header   http.Header
		internal bool
		client   string
	}{
		{"direct call", http.Header{}, true, "10.10.0.7"},
		{"through the gateway", http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Host": {"shop"}}, false, "203.0.113.5"},
		{"client sent its own chain", http.Header{"X-Forwarded-For": {"1.2.3.4, 203.0.113.5"}}, false, "203.0.113.5"},
		{"repeated header lines", http.Header{"X-Forwarded-For": {"1.2.3.4", "198.51.100.9"}}, false, "198.51.100.9"},
		{"only X-Forwarded-Host", http.Header{"X-Forwarded-Host": {"shop"}}, false, "10.10.0.7"},
		{"RFC 7239 Forwarded", http.Header{"Forwarded": {"for=192.0.2.60"}}, false, "10.10.0.7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "10.10.0.7:41234"
			r.Header = c.header
			if got := Internal(r); got != c.internal {
				t.Errorf("Internal = %v, want %v", got, c.internal)
			}
			if got := ClientAddress(r); got != c.client {
				t.Errorf("ClientAddress = %q, want %q", got, c.client)
			}
		})
	}
}

// status runs h as the service router would and returns the status it
// answers (200 when h itself runs).
func status(h httpx.HandlerFunc, r *http.Request) int {
	w := httptest.NewRecorder()
	err := h(w, r)
	var apiErr *httpx.Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &apiErr):
		return apiErr.Status
	}
	return http.StatusInternalServerError
}

func TestGuards(t *testing.T) {
	k := mustKeys(t)
	admin, _ := k.Sign(1, RoleAdmin, TypeAccess, time.Minute)
	customer, _ := k.Sign(2, RoleCustomer, TypeAccess, time.Minute)
	ok := func(w http.ResponseWriter, r *http.Request) error { return nil }
	for _, c := range []struct {
		name                              string
		viaGateway                        bool
		token                             string
		user, adminOrInternal, internalOK int
	}{
		{"internal, no token", false, "", 401, 200, 200},
		{"internal, customer token", false, customer, 200, 403, 200},
		{"internal, admin token", false, admin, 200, 200, 200},
		{"gateway, no token", true, "", 401, 401, 404},
		{"gateway, customer token", true, customer, 200, 403, 404},
		{"gateway, admin token", true, admin, 200, 200, 404},
		{"gateway, broken token", true, admin + "x", 401, 401, 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := func() *http.Request {
				r := httptest.NewRequest("POST", "/api/v1/products", nil)
				if c.viaGateway {
					r.Header.Set("X-Forwarded-For", "203.0.113.5")
				}
				if c.token != "" {
					r.Header.Set("Authorization", "Bearer "+c.token)
				}
				return r
			}
			if got := status(k.User(ok), req()); got != c.user {
				t.Errorf("User: %d, want %d", got, c.user)
			}
			if got := status(k.AdminOrInternal(ok), req()); got != c.adminOrInternal {
				t.Errorf("AdminOrInternal: %d, want %d", got, c.adminOrInternal)
			}
			if got := status(InternalOnly(ok), req()); got != c.internalOK {
				t.Errorf("InternalOnly: %d, want %d", got, c.internalOK)
			}
		})
	}
}

func TestCallerIsPassedOn(t *testing.T) {
	k := mustKeys(t)
	token, _ := k.Sign(42, RoleCustomer, TypeAccess, time.Minute)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "bearer "+token)
	var seen Principal
	err := k.User(func(w http.ResponseWriter, r *http.Request) error {
		seen, _ = Caller(r)
		return nil
	})(httptest.NewRecorder(), r)
	if err != nil || seen.UserID != 42 || seen.Subject() != "42" || seen.IsAdmin() {
		t.Fatalf("caller = %+v, err %v", seen, err)
	}
}
