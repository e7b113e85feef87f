package chaos

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Values are the experiment's configuration and secrets after resolution:
// what ${name} stands for. Secrets of every scope are flattened into it, as
// chaostoolkit-lib's substitute does.
type Values map[string]any

// ResolveValues resolves configuration and secrets: a plain value is itself,
// {type: env, key: K, default: D} is $K (D when unset; an error when unset
// without default). vars (--var k=v) override configuration keys.
func ResolveValues(e *Experiment, vars map[string]string, getenv func(string) (string, bool)) (Values, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	out := Values{}
	resolve := func(field string, v any) (any, error) {
		m, ok := v.(map[string]any)
		if !ok || m["type"] != "env" {
			return v, nil
		}
		key, _ := m["key"].(string)
		if val, ok := getenv(key); ok {
			return val, nil
		}
		if d, ok := m["default"]; ok {
			return d, nil
		}
		return nil, fmt.Errorf("%s: environment variable %s is not set and has no default (set it, or give default: in the file)", field, key)
	}
	for k, v := range e.Configuration {
		r, err := resolve("configuration."+k, v)
		if err != nil {
			return nil, err
		}
		out[k] = r
	}
	for scope, sv := range e.Secrets {
		sm, _ := sv.(map[string]any)
		for k, v := range sm {
			r, err := resolve("secrets."+scope+"."+k, v)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
	}
	for k, v := range vars {
		out[k] = v
	}
	return out, nil
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}`)

// Substitute replaces ${name} in every string of v (deeply). A string that
// is exactly "${name}" takes the value with its type; unknown names are left
// as written (chaostoolkit-lib uses safe_substitute).
func (vals Values) Substitute(v any) any {
	switch t := v.(type) {
	case string:
		if m := varRef.FindStringSubmatch(t); m != nil && m[0] == t {
			if x, ok := vals[m[1]]; ok {
				return x
			}
			return t
		}
		return varRef.ReplaceAllStringFunc(t, func(ref string) string {
			name := strings.TrimSuffix(strings.TrimPrefix(ref, "${"), "}")
			x, ok := vals[name]
			if !ok {
				return ref
			}
			if s, ok := x.(string); ok {
				return s
			}
			return fmt.Sprint(x)
		})
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = vals.Substitute(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = vals.Substitute(x)
		}
		return out
	}
	return v
}
