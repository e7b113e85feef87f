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

// Route sends requests whose path starts with Prefix to Service:Port, or,
// when Backends is set, to one of them in proportion to their weights; a
// request that carries Match's header with Match's value goes to Match's
// service whatever the weights.
type Route struct {
	Prefix   string        `json:"prefix"`
	Service  string        `json:"service"`
	Port     int           `json:"port"`
	Backends []Backend     `json:"backends,omitempty"`
	Match    *HeaderMatch  `json:"match,omitempty"`
	Timeout  time.Duration `json:"timeout"` // per attempt; 0 means DefaultRouteTimeout
	Retries  int           `json:"retries"` // extra attempts on another instance when the connection fails
}

// Backend is one weighted destination of a route.
type Backend struct {
	Service string `json:"service"`
	Port    int    `json:"port"`
	Weight  int    `json:"weight"` // share of the route's requests: weight / sum of weights
}

// HeaderMatch sends the requests whose Header equals Value to Service:Port.
type HeaderMatch struct {
	Header  string `json:"header"`
	Value   string `json:"value"`
	Service string `json:"service"`
	Port    int    `json:"port"`
}

// targets is the route's weighted backends: Backends, or Service:Port alone.
func (r Route) targets() []Backend {
	if len(r.Backends) > 0 {
		return r.Backends
	}
	return []Backend{{Service: r.Service, Port: r.Port, Weight: 1}}
}

// routeJSON is Route on the wire: Timeout is a Go duration string ("2s"),
// and a plain number of nanoseconds is accepted too because json.Marshal of
// a time.Duration produces one.
type routeJSON struct {
	Prefix   string          `json:"prefix"`
	Service  string          `json:"service,omitempty"`
	Port     int             `json:"port,omitempty"`
	Backends []Backend       `json:"backends,omitempty"`
	Match    *HeaderMatch    `json:"match,omitempty"`
	Timeout  json.RawMessage `json:"timeout,omitempty"`
	Retries  int             `json:"retries"`
}

// MarshalJSON writes Timeout as a duration string.
func (r Route) MarshalJSON() ([]byte, error) {
	timeout, err := json.Marshal(r.Timeout.String())
	if err != nil {
		return nil, err
	}
	return json.Marshal(routeJSON{Prefix: r.Prefix, Service: r.Service, Port: r.Port, Backends: r.Backends, Match: r.Match,
		Timeout: timeout, Retries: r.Retries})
}

// UnmarshalJSON accepts Timeout as "2s" or as nanoseconds.
func (r *Route) UnmarshalJSON(data []byte) error {
	var raw routeJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*r = Route{Prefix: raw.Prefix, Service: raw.Service, Port: raw.Port, Backends: raw.Backends, Match: raw.Match, Retries: raw.Retries}
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

// validateTargets checks where the route sends requests: one service, or
// weighted backends, and the header match.
func (r Route) validateTargets(field string) []error {
	var errs []error
	checkPort := func(f, service string, port int) {
		if port < 1 || port > 65535 {
			errs = append(errs, fmt.Errorf("%s: %d is not a TCP port; set the port %s serves on (1-65535)", f, port, service))
		}
	}
	switch {
	case len(r.Backends) > 0 && r.Service != "":
		errs = append(errs, fmt.Errorf("%s: both service and backends; keep backends (weighted) or service (one), not both", field))
	case len(r.Backends) == 0:
		if r.Service == "" {
			errs = append(errs, fmt.Errorf("%s.service: empty; name the service that serves %q", field, r.Prefix))
		}
		checkPort(field+".port", r.Service, r.Port)
	default:
		total := 0
		for i, b := range r.Backends {
			bf := fmt.Sprintf("%s.backends[%d]", field, i)
			if b.Service == "" {
				errs = append(errs, fmt.Errorf("%s.service: empty; name the service", bf))
			}
			checkPort(bf+".port", b.Service, b.Port)
			if b.Weight < 0 {
				errs = append(errs, fmt.Errorf("%s.weight: %d is negative; use 0 to send it nothing", bf, b.Weight))
			}
			total += max(b.Weight, 0)
		}
		if total == 0 {
			errs = append(errs, fmt.Errorf("%s.backends: every weight is 0; give at least one backend a positive weight", field))
		}
	}
	if m := r.Match; m != nil {
		if m.Header == "" || m.Value == "" || m.Service == "" {
			errs = append(errs, fmt.Errorf("%s.match: needs header, value and service, e.g. {header: x-canary, value: always, service: v2}", field))
		}
		checkPort(field+".match.port", m.Service, m.Port)
	}
	return errs
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
		errs = append(errs, r.validateTargets(field)...)
		if r.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%s.timeout: %s is negative; use a positive duration such as \"10s\"", field, r.Timeout))
		}
		if r.Retries < 0 {
			errs = append(errs, fmt.Errorf("%s.retries: %d is negative; use 0 for no retries", field, r.Retries))
		}
	}
	return errors.Join(errs...)
}
