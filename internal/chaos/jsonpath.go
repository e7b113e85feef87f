package chaos

import (
	"fmt"
	"strconv"
	"strings"
)

// JSONPath evaluates the subset of JSONPath that experiments use: $ (the
// root), .name and ['name'], [n] (negative counts from the end), [*] and
// .*, and ..name (every name at any depth). It returns the matched values.
func JSONPath(path string, doc any) ([]any, error) {
	steps, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	cur := []any{doc}
	for _, s := range steps {
		var next []any
		for _, v := range cur {
			next = append(next, s.apply(v)...)
		}
		cur = next
	}
	return cur, nil
}

type pathStep struct {
	name      string
	index     int
	kind      int // stepName, stepIndex, stepAll, stepDeep
	deepChild *pathStep
}

const (
	stepName = iota
	stepIndex
	stepAll
	stepDeep
)

func (s pathStep) apply(v any) []any {
	switch s.kind {
	case stepName:
		if m, ok := v.(map[string]any); ok {
			if x, ok := m[s.name]; ok {
				return []any{x}
			}
		}
	case stepIndex:
		if l, ok := v.([]any); ok {
			i := s.index
			if i < 0 {
				i += len(l)
			}
			if i >= 0 && i < len(l) {
				return []any{l[i]}
			}
		}
	case stepAll:
		switch t := v.(type) {
		case []any:
			return append([]any(nil), t...)
		case map[string]any:
			var out []any
			for _, k := range sortedKeys(t) {
				out = append(out, t[k])
			}
			return out
		}
	case stepDeep:
		var out []any
		var walk func(any)
		walk = func(x any) {
			out = append(out, s.deepChild.apply(x)...)
			switch t := x.(type) {
			case []any:
				for _, y := range t {
					walk(y)
				}
			case map[string]any:
				for _, k := range sortedKeys(t) {
					walk(t[k])
				}
			}
		}
		walk(v)
		return out
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func parsePath(path string) ([]pathStep, error) {
	p := strings.TrimSpace(path)
	if !strings.HasPrefix(p, "$") {
		return nil, fmt.Errorf("jsonpath %q does not start with $", path)
	}
	p = p[1:]
	var steps []pathStep
	for len(p) > 0 {
		switch {
		case strings.HasPrefix(p, ".."):
			p = p[2:]
			name, rest := readName(p)
			if name == "" {
				return nil, fmt.Errorf("jsonpath %q: a name must follow the two dots", path)
			}
			child := pathStep{kind: stepName, name: name}
			if name == "*" {
				child = pathStep{kind: stepAll}
			}
			steps = append(steps, pathStep{kind: stepDeep, deepChild: &child})
			p = rest
		case strings.HasPrefix(p, "."):
			name, rest := readName(p[1:])
			if name == "" {
				return nil, fmt.Errorf("jsonpath %q: a name must follow the dot", path)
			}
			if name == "*" {
				steps = append(steps, pathStep{kind: stepAll})
			} else {
				steps = append(steps, pathStep{kind: stepName, name: name})
			}
			p = rest
		case strings.HasPrefix(p, "["):
			end := strings.Index(p, "]")
			if end < 0 {
				return nil, fmt.Errorf("jsonpath %q: [ without ]", path)
			}
			in := strings.TrimSpace(p[1:end])
			p = p[end+1:]
			switch {
			case in == "*":
				steps = append(steps, pathStep{kind: stepAll})
			case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
				steps = append(steps, pathStep{kind: stepName, name: in[1 : len(in)-1]})
			default:
				i, err := strconv.Atoi(in)
				if err != nil {
					return nil, fmt.Errorf("jsonpath %q: [%s] is not supported (use [n], [*] or ['name'])", path, in)
				}
				steps = append(steps, pathStep{kind: stepIndex, index: i})
			}
		default:
			return nil, fmt.Errorf("jsonpath %q: unexpected %q", path, p)
		}
	}
	return steps, nil
}

func readName(p string) (name, rest string) {
	i := 0
	for i < len(p) && p[i] != '.' && p[i] != '[' {
		i++
	}
	return p[:i], p[i:]
}
