package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Upstream is another shop service, called by its name-based URL.
type Upstream struct {
	// Name is how errors refer to the service, e.g. "inventory-service".
	Name    string
	BaseURL string
	client  *http.Client
}

// upstreamTimeout bounds every call to another service.
const upstreamTimeout = 5 * time.Second

// NewUpstream describes a service reachable at baseURL (from an env var such
// as INVENTORY_SERVICE_URL, e.g. http://inventory-service:8002).
func NewUpstream(name, envName, baseURL string) (*Upstream, error) {
	if baseURL == "" {
		return nil, fmt.Errorf("%s is empty: set it to the %s URL, e.g. http://%s:8000", envName, name, name)
	}
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return nil, fmt.Errorf("%s=%q must start with http:// or https://", envName, baseURL)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	return &Upstream{
		Name:    name,
		BaseURL: strings.TrimRight(baseURL, "/"),
		client:  &http.Client{Timeout: upstreamTimeout, Transport: transport},
	}, nil
}

// Response is a decoded answer from an upstream.
type Response struct {
	Status int
	Body   []byte
}

// Detail is the "detail" of an error answer, or the raw body.
func (r *Response) Detail() string {
	var body struct {
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(r.Body, &body); err == nil && len(body.Detail) > 0 {
		var s string
		if json.Unmarshal(body.Detail, &s) == nil {
			return s
		}
		return string(body.Detail)
	}
	return strings.TrimSpace(string(r.Body))
}

// Decode reads the body into v.
func (r *Response) Decode(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("decoding answer: %w", err)
	}
	return nil
}

// Do sends a JSON request (body may be nil). A failure to reach the service
// is an *Error with 503 naming the service; the caller judges the status.
func (u *Upstream) Do(ctx context.Context, method, path string, body any) (*Response, error) {
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding request to %s: %w", u.Name, err)
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.BaseURL+path, reader)
	if err != nil {
		return nil, fmt.Errorf("building request to %s: %w", u.Name, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if id := RequestID(ctx); id != "" {
		req.Header.Set("X-Request-ID", id)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("calling %s %s %s: %w", u.Name, method, path, ctx.Err())
		}
		var timeout interface{ Timeout() bool }
		if errors.As(err, &timeout) && timeout.Timeout() {
			return nil, Errorf(http.StatusServiceUnavailable, "%s did not answer within %s (%s %s)", u.Name, upstreamTimeout, method, path)
		}
		return nil, Errorf(http.StatusServiceUnavailable, "%s is unavailable: %v", u.Name, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, Errorf(http.StatusBadGateway, "%s: reading answer to %s %s: %v", u.Name, method, path, err)
	}
	if resp.StatusCode >= 500 {
		return nil, Errorf(http.StatusBadGateway, "%s answered %d to %s %s: %s", u.Name, resp.StatusCode, method, path, (&Response{Body: data}).Detail())
	}
	return &Response{Status: resp.StatusCode, Body: data}, nil
}

func unwrapURLError(err error) error {
	var urlErr interface{ Unwrap() error }
	if errors.As(err, &urlErr) {
		if inner := urlErr.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
