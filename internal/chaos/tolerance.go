package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"regexp"
	"strings"
)

// WithinTolerance decides whether a probe's value is within tolerance, by
// chaostoolkit-lib's rules (chaoslib/hypothesis.py within_tolerance):
//
//   - bool or string: the value equals it;
//   - an integer: the value equals it, or the value's "status" does when the
//     value is a mapping with a status (http and process outputs);
//   - a list: when the value has a "status", that status is in the list;
//     a list of exactly two numbers is the inclusive range [lo, hi];
//     any other list means membership;
//   - a mapping with type regex (pattern, optional target), jsonpath (path,
//     optional target, count, expect), range (range [lo, hi], optional
//     target) or probe (an activity given the value as argument `value`,
//     within tolerance when it succeeds with a true result).
//
// runProbe runs a probe tolerance; it may be nil when none is used.
func WithinTolerance(ctx context.Context, tol, value any, subst func(any) any, runProbe func(context.Context, map[string]any) (any, error)) (bool, error) {
	if subst == nil {
		subst = func(v any) any { return v }
	}
	switch t := tol.(type) {
	case bool:
		b, ok := value.(bool)
		return ok && b == t, nil
	case string:
		s, ok := value.(string)
		return ok && s == t, nil
	case int64, int, float64:
		if st, ok := status(value); ok {
			return numEqual(st, t), nil
		}
		return numEqual(value, t), nil
	case []any:
		if st, ok := status(value); ok {
			return contains(t, st), nil
		}
		if len(t) == 2 {
			lo, ok1 := number(t[0])
			hi, ok2 := number(t[1])
			if ok1 && ok2 {
				v, ok := number(value)
				return ok && lo <= v && v <= hi, nil
			}
		}
		return contains(t, value), nil
	case map[string]any:
		return dictTolerance(ctx, t, value, subst, runProbe)
	case nil:
		return false, fmt.Errorf("tolerance is missing")
	}
	return false, fmt.Errorf("tolerance of type %T is not supported", tol)
}

func status(v any) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	s, ok := m["status"]
	return s, ok
}

func numEqual(a, b any) bool {
	x, ok1 := number(a)
	y, ok2 := number(b)
	return ok1 && ok2 && x == y
}

func contains(list []any, v any) bool {
	for _, x := range list {
		if numEqual(x, v) || (!isNumber(x) && reflect.DeepEqual(x, v)) {
			return true
		}
	}
	return false
}

func isNumber(v any) bool { _, ok := number(v); return ok }

func target(t map[string]any, value any) any {
	name, _ := t["target"].(string)
	if name == "" {
		return value
	}
	if m, ok := value.(map[string]any); ok {
		if x, ok := m[name]; ok {
			return x
		}
	}
	return value
}

func dictTolerance(ctx context.Context, t map[string]any, value any, subst func(any) any, runProbe func(context.Context, map[string]any) (any, error)) (bool, error) {
	switch typ, _ := t["type"].(string); typ {
	case "regex":
		pattern, _ := subst(t["pattern"]).(string)
		rx, err := regexp.Compile(pattern)
		if err != nil {
			return false, fmt.Errorf("tolerance pattern %q: %w", pattern, err)
		}
		s, ok := target(t, value).(string)
		if !ok {
			b, _ := json.Marshal(target(t, value))
			s = string(b)
		}
		return rx.MatchString(s), nil
	case "jsonpath":
		path, _ := subst(t["path"]).(string)
		v := target(t, value)
		if s, ok := v.(string); ok {
			var decoded any
			if json.Unmarshal([]byte(s), &decoded) == nil {
				v = normalize(decoded)
			}
		}
		values, err := JSONPath(path, v)
		if err != nil {
			return false, err
		}
		result := len(values) > 0
		if c, ok := t["count"]; ok {
			result = numEqual(int64(len(values)), c)
		}
		if expect, ok := t["expect"]; ok {
			expect = subst(expect)
			want, isList := expect.([]any)
			if !isList {
				want = []any{expect}
			}
			result = jsonEqual(values, want)
		}
		return result, nil
	case "range":
		r, ok := t["range"].([]any)
		if !ok || len(r) != 2 {
			return false, fmt.Errorf("a range tolerance needs range: [lo, hi]")
		}
		v := target(t, value)
		if s, ok := v.(string); ok {
			f, ok := new(big.Float).SetString(strings.TrimSpace(s))
			if !ok {
				return false, nil
			}
			x, _ := f.Float64()
			v = x
		}
		x, ok := number(v)
		lo, ok1 := number(r[0])
		hi, ok2 := number(r[1])
		return ok && ok1 && ok2 && lo <= x && x <= hi, nil
	case "probe":
		if runProbe == nil {
			return false, fmt.Errorf("probe tolerances cannot run here")
		}
		prov, _ := t["provider"].(map[string]any)
		prov = maps.Clone(prov)
		if prov == nil {
			prov = map[string]any{}
		}
		args, _ := prov["arguments"].(map[string]any)
		args = maps.Clone(args)
		if args == nil {
			args = map[string]any{}
		}
		args["value"] = value
		prov["arguments"] = args
		withValue := maps.Clone(t)
		withValue["provider"] = prov
		out, err := runProbe(ctx, withValue)
		if err != nil {
			return false, nil // chaostoolkit-lib: a failed probe is out of tolerance
		}
		return truthy(out), nil
	default:
		return false, fmt.Errorf("tolerance type %q is not supported (regex, jsonpath, range, probe)", typ)
	}
}

func jsonEqual(a, b []any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// truthy is Python's bool() of a JSON value.
func truthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	case string:
		return t != ""
	case []any:
		return len(t) > 0
	case map[string]any:
		return len(t) > 0
	}
	if f, ok := number(v); ok {
		return f != 0
	}
	return true
}

// checkTolerance checks a tolerance's shape when the file is read.
func checkTolerance(field string, tol any, ps *Problems) {
	switch t := tol.(type) {
	case bool, string, int64, float64, []any:
	case map[string]any:
		switch typ, _ := t["type"].(string); typ {
		case "regex":
			p, ok := t["pattern"].(string)
			if !ok {
				ps.add(field+".pattern", "missing", "a regex tolerance needs a pattern")
			} else if !strings.Contains(p, "${") {
				if _, err := regexp.Compile(p); err != nil {
					ps.add(field+".pattern", err.Error(), "write an RE2 regular expression")
				}
			}
		case "jsonpath":
			p, ok := t["path"].(string)
			if !ok {
				ps.add(field+".path", "missing", "a jsonpath tolerance needs a path such as $.items[*].id")
			} else if !strings.Contains(p, "${") {
				if _, err := parsePath(p); err != nil {
					ps.add(field+".path", err.Error(), "")
				}
			}
		case "range":
			r, ok := t["range"].([]any)
			if !ok || len(r) != 2 || !isNumber(r[0]) || !isNumber(r[1]) {
				ps.add(field+".range", "must be [lo, hi] of numbers", "")
			}
		case "probe":
			if _, ok := t["provider"].(map[string]any); !ok {
				ps.add(field+".provider", "missing", "a probe tolerance is an activity with a provider")
			}
		default:
			ps.add(field+".type", fmt.Sprintf("%v", t["type"]), "a mapping tolerance has type regex, jsonpath, range or probe")
		}
	default:
		ps.add(field, fmt.Sprintf("a tolerance of type %T", tol), "use a bool, string, number, list or mapping")
	}
}
