package spec

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a cluster file: where, what, and how to fix it.
type Problem struct {
	Field   string // path of the field, e.g. services.web.ip or hosts[1].subnet (list indexes start at 0)
	Value   string // the offending value as written, empty when the field is missing
	Message string
	Fix     string
	Line    int // 1-based position in the file; 0 when unknown (e.g. a cluster read back from the store)
	Column  int
	File    string // the file as the user named it; empty when parsed from bytes
}

// String renders the problem as "file:line:col: field = value: message; fix: fix".
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", p.File, p.Line, p.Column)
	case p.File != "":
		fmt.Fprintf(&b, "%s: ", p.File)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d:%d: ", p.Line, p.Column)
	}
	b.WriteString(p.Field)
	if p.Value != "" {
		b.WriteString(" = ")
		b.WriteString(p.Value)
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	if p.Fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// Problems is every problem found in one cluster file. It is the error
// returned by Load and Parse.
type Problems []Problem

// Error renders one line per problem.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Has reports whether some problem is about field (exactly).
func (ps Problems) Has(field string) bool {
	for _, p := range ps {
		if p.Field == field {
			return true
		}
	}
	return false
}

// add records a problem; value is formatted with %v unless it is already a string.
func (ps *Problems) add(field string, value any, message, fix string) {
	*ps = append(*ps, Problem{Field: field, Value: valueString(value), Message: message, Fix: fix})
}

func valueString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []string:
		return "[" + strings.Join(v, ", ") + "]"
	default:
		return fmt.Sprint(v)
	}
}

// sortByPosition orders problems as they appear in the file; problems without
// a position keep their relative order at the end.
func (ps Problems) sortByPosition() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if (a.Line == 0) != (b.Line == 0) {
			return a.Line != 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// parentField strips the last element of a field path:
// services.web.ip -> services.web, hosts[1] -> hosts, services -> "".
func parentField(field string) string {
	i := strings.LastIndexAny(field, ".[")
	if i < 0 {
		return ""
	}
	return field[:i]
}

// nearest returns the candidate closest to name by edit distance, if it is
// close enough to be a plausible typo.
func nearest(name string, candidates []string) (string, bool) {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(name), strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(2, len(name)/3)
	if bestDist < 0 || bestDist > limit || bestDist >= len(name) {
		return "", false
	}
	return best, true
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// suggestion is the fix for a misspelt name: the nearest candidate, or the
// list of candidates.
func suggestion(name string, candidates []string, what string) string {
	if near, ok := nearest(name, candidates); ok {
		return fmt.Sprintf("did you mean `%s`?", near)
	}
	if len(candidates) == 0 {
		return fmt.Sprintf("there are no %s defined", what)
	}
	return fmt.Sprintf("use one of the known %s: %s", what, strings.Join(candidates, ", "))
}
