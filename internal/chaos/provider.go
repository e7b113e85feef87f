package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// Provider runs one activity's provider (already substituted) and returns
// its output; an error makes the activity "failed".
type Provider interface {
	Run(ctx context.Context, provider map[string]any) (any, error)
}

// ProviderFunc adapts a function to Provider.
type ProviderFunc func(ctx context.Context, provider map[string]any) (any, error)

// Run calls f.
func (f ProviderFunc) Run(ctx context.Context, p map[string]any) (any, error) { return f(ctx, p) }

// HTTPProvider is chaostoolkit-lib's http provider: url, method (GET),
// headers, arguments (query for GET, JSON body when Content-Type is
// application/json, else a form), timeout (seconds, or [connect, read]).
// The output is {status, headers, body}; the body is decoded JSON when the
// answer's Content-Type is application/json. Any status is a success, as
// in chaostoolkit-lib (a tolerance judges it), unless the weft extension
// expected_status is given. Connection errors and timeouts fail.
type HTTPProvider struct {
	// Dial makes every connection; the CLI's refuses lab addresses from the
	// root namespace. nil dials normally.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Run performs the request.
func (h HTTPProvider) Run(ctx context.Context, p map[string]any) (any, error) {
	rawURL, _ := p["url"].(string)
	method := "GET"
	if m, ok := p["method"].(string); ok && m != "" {
		method = strings.ToUpper(m)
	}
	timeout := 30 * time.Second
	switch t := p["timeout"].(type) {
	case []any:
		var total float64
		for _, x := range t {
			f, _ := number(x)
			total += f
		}
		timeout = time.Duration(total * float64(time.Second))
	default:
		if f, ok := number(t); ok {
			timeout = time.Duration(f * float64(time.Second))
		}
	}
	headers := map[string]string{}
	if hm, ok := p["headers"].(map[string]any); ok {
		for k, v := range hm {
			headers[k] = fmt.Sprint(v)
		}
	}
	var body io.Reader
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", rawURL, err)
	}
	if args, ok := p["arguments"]; ok && args != nil {
		if method == "GET" {
			if m, ok := args.(map[string]any); ok {
				q := u.Query()
				for _, k := range sortedKeys(m) {
					q.Set(k, fmt.Sprint(m[k]))
				}
				u.RawQuery = q.Encode()
			}
		} else if headers["Content-Type"] == "application/json" {
			b, err := json.Marshal(args)
			if err != nil {
				return nil, fmt.Errorf("encoding arguments: %w", err)
			}
			body = bytes.NewReader(b)
		} else if m, ok := args.(map[string]any); ok {
			form := url.Values{}
			for _, k := range sortedKeys(m) {
				form.Set(k, fmt.Sprint(m[k]))
			}
			body = strings.NewReader(form.Encode())
			if _, set := headers["Content-Type"]; !set {
				headers["Content-Type"] = "application/x-www-form-urlencoded"
			}
		} else if s, ok := args.(string); ok {
			body = strings.NewReader(s)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("building request %s %s: %w", method, rawURL, err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableKeepAlives: true, DialContext: h.Dial}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("activity took too long to complete (timeout %s)", timeout)
		}
		return nil, fmt.Errorf("failed to connect to %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", rawURL, err)
	}
	out := map[string]any{"status": int64(resp.StatusCode), "headers": flatHeaders(resp.Header), "body": string(raw)}
	if resp.Header.Get("Content-Type") == "application/json" {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			out["body"] = normalizeFloat(v)
		}
	}
	if want, ok := p["expected_status"]; ok && !numEqual(want, int64(resp.StatusCode)) {
		return out, fmt.Errorf("%s %s answered %d, expected %v", method, rawURL, resp.StatusCode, want)
	}
	return out, nil
}

func flatHeaders(h http.Header) map[string]any {
	out := map[string]any{}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out[k] = strings.Join(h[k], ", ")
	}
	return out
}

// normalizeFloat turns whole float64s of decoded JSON into int64, as
// Python's json gives ints.
func normalizeFloat(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalizeFloat(x)
		}
	case []any:
		for i, x := range t {
			t[i] = normalizeFloat(x)
		}
	case float64:
		if t == float64(int64(t)) {
			return int64(t)
		}
	}
	return v
}

// ProcessProvider is chaostoolkit-lib's process provider: path (looked up
// in PATH), arguments (a string is run by the shell after the path; a list
// is argv; a mapping is flattened into key, value pairs), timeout (seconds).
// The output is {status, stdout, stderr}; a non-zero exit is a success (a
// tolerance judges it); a timeout fails.
type ProcessProvider struct{}

// Run runs the process.
func (ProcessProvider) Run(ctx context.Context, p map[string]any) (any, error) {
	raw, _ := p["path"].(string)
	path, err := exec.LookPath(raw)
	if err != nil {
		return nil, fmt.Errorf("path %q cannot be found: %w", raw, err)
	}
	if f, ok := number(p["timeout"]); ok && f > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(f*float64(time.Second)))
		defer cancel()
	}
	var cmd *exec.Cmd
	switch a := p["arguments"].(type) {
	case string:
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", path+" "+a)
	case []any:
		var argv []string
		for _, x := range a {
			if x == nil || x == "" {
				continue
			}
			argv = append(argv, fmt.Sprint(x))
		}
		cmd = exec.CommandContext(ctx, path, argv...)
	case map[string]any:
		var argv []string
		for _, k := range sortedKeys(a) {
			argv = append(argv, k)
			if a[k] != nil && a[k] != "" {
				argv = append(argv, fmt.Sprint(a[k]))
			}
		}
		cmd = exec.CommandContext(ctx, path, argv...)
	default:
		cmd = exec.CommandContext(ctx, path)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("process activity took too long to complete")
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, fmt.Errorf("running %s: %w", path, err)
		}
		code = ee.ExitCode()
	}
	return map[string]any{"status": int64(code), "stdout": stdout.String(), "stderr": stderr.String()}, nil
}
