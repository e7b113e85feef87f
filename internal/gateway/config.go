package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// ConfigEnv is the environment variable that carries the gateway's Config as JSON.
const ConfigEnv = "WEFT_GATEWAY_CONFIG"

// Defaults applied by New to zero fields.
const (
	DefaultListen        = ":80"
	DefaultMetricsListen = ":9100"
	DefaultMaxBodyBytes  = 1 << 20
	DefaultDomain        = "weft"
	DefaultName          = "gateway"
	DefaultRouteTimeout  = 10 * time.Second
)

// Route sends requests whose path starts with Prefix to Service:Port.
type Route struct {
	Prefix  string        `json:"prefix"`
	Service string        `json:"service"`
	Port    int           `json:"port"`
	Timeout time.Duration `json:"timeout"` // per attempt; 0 means DefaultRouteTimeout
	Retries int           `json:"retries"` // extra attempts on another instance when the connection fails
}

// routeJSON is Route on the wire: Timeout is a Go duration string ("2s"),
// and a plain number of nanoseconds is accepted too because json.Marshal of
// a time.Duration produces one.
type routeJSON struct {
	Prefix  string          `json:"prefix"`
	Service string          `json:"service"`
	Port    int             `json:"port"`
	Timeout json.RawMessage `json:"timeout,omitempty"`
	Retries int             `json:"retries"`
}

// MarshalJSON writes Timeout as a duration string.
func (r Route) MarshalJSON() ([]byte, error) {
	timeout, err := json.Marshal(r.Timeout.String())
	if err != nil {
		return nil, err
	}
	return json.Marshal(routeJSON{Prefix: r.Prefix, Service: r.Service, Port: r.Port, Timeout: timeout, Retries: r.Retries})
}

// UnmarshalJSON accepts Timeout as "2s" or as nanoseconds.
func (r *Route) UnmarshalJSON(data []byte) error {
	var raw routeJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*r = Route{Prefix: raw.Prefix, Service: raw.Service, Port: raw.Port, Retries: raw.Retries}
	if len(raw.Timeout) == 0 || string(raw.Timeout) == "null" {
		return nil
	}
	var text string
	if err := json.Unmarshal(raw.Timeout, &text); err == nil {
		d, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("route %q: timeout %q is not a duration; write it like \"2s\" or \"500ms\"", raw.Prefix, text)
		}
		r.Timeout = d
		return nil
	}
	var nanos int64
	if err := json.Unmarshal(raw.Timeout, &nanos); err != nil {
		return fmt.Errorf("route %q: timeout %s is neither a duration string nor nanoseconds", raw.Prefix, raw.Timeout)
	}
	r.Timeout = time.Duration(nanos)
	return nil
}

// Config is everything the gateway needs; zero fields take the defaults above.
type Config struct {
	Listen        string  `json:"listen"`
	MetricsListen string  `json:"metrics_listen"`
	Routes        []Route `json:"routes"` // longest prefix wins; the path is passed through unchanged
	MaxBodyBytes  int64   `json:"max_body_bytes"`
	Domain        string  `json:"domain"` // cluster DNS domain: service S resolves as S.<Domain>.
	Name          string  `json:"name"`   // this gateway's service name, reported by /health
	Limits        Limits  `json:"limits,omitempty"`

	// AccessLog receives one JSON line per request; nil means os.Stdout.
	AccessLog         io.Writer `json:"-"`
	AccessLogSampling           // access_log_sample: how much of the traffic is logged (accesslog.go)
}

// ConfigFromEnv reads the Config from the JSON in $WEFT_GATEWAY_CONFIG.
func ConfigFromEnv() (Config, error) {
	text, ok := os.LookupEnv(ConfigEnv)
	if !ok || strings.TrimSpace(text) == "" {
		return Config{}, fmt.Errorf("%s is not set: the gateway needs its routes as JSON in it (or pass a config file)", ConfigEnv)
	}
	cfg, err := ParseConfig([]byte(text))
	if err != nil {
		return Config{}, fmt.Errorf("reading %s: %w", ConfigEnv, err)
	}
	return cfg, nil
}

// LoadConfig reads the Config from a JSON file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading gateway config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("gateway config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes a JSON Config, rejecting unknown fields so that a typo
// is reported instead of silently ignored.
func ParseConfig(data []byte) (Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("decoding JSON: %w", err)
	}
	return cfg, nil
}

// withDefaults returns cfg with zero fields filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.MetricsListen == "" {
		cfg.MetricsListen = DefaultMetricsListen
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	cfg.Limits = cfg.Limits.withDefaults()
	routes := make([]Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		if r.Timeout == 0 {
			r.Timeout = DefaultRouteTimeout
		}
		routes[i] = r
	}
	cfg.Routes = routes
	return cfg
}

// validate reports every problem of a defaulted Config at once.
func (cfg Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port; write it like \":80\"", cfg.Listen))
	}
	if _, _, err := net.SplitHostPort(cfg.MetricsListen); err != nil {
		errs = append(errs, fmt.Errorf("metrics_listen: %q is not host:port; write it like \":9100\"", cfg.MetricsListen))
	}
	if cfg.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d is negative; use a positive size in bytes such as 1048576", cfg.MaxBodyBytes))
	}
	if err := cfg.Limits.validate(); err != nil {
		errs = append(errs, err)
	}
	seen := make(map[string]int, len(cfg.Routes))
	for i, r := range cfg.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		switch {
		case !strings.HasPrefix(r.Prefix, "/"):
			errs = append(errs, fmt.Errorf("%s.prefix: %q must start with \"/\"", field, r.Prefix))
		case strings.ContainsAny(r.Prefix, "?#"):
			errs = append(errs, fmt.Errorf("%s.prefix: %q must be a path without query or fragment", field, r.Prefix))
		}
		if j, dup := seen[r.Prefix]; dup {
			errs = append(errs, fmt.Errorf("%s.prefix: %q is already routed by routes[%d]; keep one of them", field, r.Prefix, j))
		}
		seen[r.Prefix] = i
		if r.Service == "" {
			errs = append(errs, fmt.Errorf("%s.service: empty; name the service that serves %q", field, r.Prefix))
		}
		if r.Port < 1 || r.Port > 65535 {
			errs = append(errs, fmt.Errorf("%s.port: %d is not a TCP port; set the port %s serves on (1-65535)", field, r.Port, r.Service))
		}
		if r.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%s.timeout: %s is negative; use a positive duration such as \"10s\"", field, r.Timeout))
		}
		if r.Retries < 0 {
			errs = append(errs, fmt.Errorf("%s.retries: %d is negative; use 0 for no retries", field, r.Retries))
		}
	}
	return errors.Join(errs...)
}
