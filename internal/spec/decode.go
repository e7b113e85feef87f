package spec

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// position is where a field's key starts in the file (1-based).
type position struct{ line, column int }

// decoder turns the YAML node tree into a Cluster, collecting every problem
// instead of stopping at the first, and remembering where each field was
// written so that validation problems can point at it.
type decoder struct {
	problems  Problems
	positions map[string]position
	// undecodable holds fields whose value could not be read; validation
	// problems about them (e.g. "missing") would only repeat the first one.
	undecodable map[string]bool
	// zeros holds the fields written as 0 (or 0s): where a left-out field
	// gets a default, a written 0 must not silently become that default.
	zeros map[string]*yaml.Node
}

func newDecoder() *decoder {
	return &decoder{positions: map[string]position{}, undecodable: map[string]bool{}, zeros: map[string]*yaml.Node{}}
}

func (d *decoder) fail(n *yaml.Node, field, value, message, fix string) {
	d.problems = append(d.problems, Problem{Field: field, Value: value, Message: message, Fix: fix, Line: n.Line, Column: n.Column})
	d.undecodable[field] = true
}

func (d *decoder) at(n *yaml.Node, field string) {
	d.positions[field] = position{n.Line, n.Column}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// resolve follows aliases so anchors (&x / *x) work everywhere.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

// fieldReaders maps each known key of a mapping to the function reading its value.
type fieldReaders map[string]func(value *yaml.Node, path string)

func (f fieldReaders) names() []string {
	names := make([]string, 0, len(f))
	for name := range f {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// mapping reads a mapping whose keys are fixed field names; unknown keys are
// problems with the nearest known name suggested.
func (d *decoder) mapping(n *yaml.Node, path string, fields fieldReaders) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "", fmt.Sprintf("must be a mapping of fields, not %s", kindName(n)),
			fmt.Sprintf("write it as `key: value` lines, one of: %s", strings.Join(fields.names(), ", ")))
		return
	}
	d.entries(n, path, "field", func(key, value *yaml.Node, field string) {
		read, ok := fields[key.Value]
		if !ok && path == "" && strings.HasPrefix(key.Value, "x-") {
			// Top-level x- keys hold YAML anchors for reuse, as in Compose files.
			return
		}
		if !ok {
			d.fail(key, field, "", "unknown field", suggestion(key.Value, fields.names(), "fields"))
			return
		}
		read(value, field)
	})
	d.mergeKeys(n, path, fields)
}

// mergeKeys applies YAML merge keys (<<: *anchor) in a mapping of fixed
// field names; explicit keys win.
func (d *decoder) mergeKeys(n *yaml.Node, path string, fields fieldReaders) {
	d.merged(n, path, "`<<: *defaults`", func(k, v *yaml.Node, field string) {
		if _, seen := d.positions[field]; !seen {
			d.at(k, field)
		}
		if read, ok := fields[k.Value]; ok {
			read(v, field)
		} else {
			d.fail(k, field, "", "unknown field (merged with <<)", suggestion(k.Value, fields.names(), "fields"))
		}
	})
}

// merged calls each for every entry that the merge keys (<<) of mapping n
// add: the entries of the anchored mapping(s), unless written explicitly in
// n or added by an earlier merge, as YAML's merge key says.
func (d *decoder) merged(n *yaml.Node, path, example string, each func(key, value *yaml.Node, field string)) {
	explicit := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Tag != "!!merge" {
			explicit[n.Content[i].Value] = true
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], resolve(n.Content[i+1])
		if key.Tag != "!!merge" {
			continue
		}
		sources := []*yaml.Node{value}
		if value.Kind == yaml.SequenceNode {
			sources = value.Content
		}
		for _, src := range sources {
			src = resolve(src)
			if src.Kind != yaml.MappingNode {
				d.fail(key, path, "", "`<<` must merge a mapping", "point `<<:` at an anchored mapping, e.g. "+example)
				continue
			}
			for j := 0; j+1 < len(src.Content); j += 2 {
				k := src.Content[j]
				if k.Tag == "!!merge" || explicit[k.Value] {
					continue
				}
				explicit[k.Value] = true
				each(k, src.Content[j+1], join(path, k.Value))
			}
		}
	}
}

// entries walks the key/value pairs of a mapping in file order, skipping merge
// keys, reporting duplicate keys and remembering each key's position.
func (d *decoder) entries(n *yaml.Node, path, what string, each func(key, value *yaml.Node, field string)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Tag == "!!merge" {
			continue
		}
		field := join(path, key.Value)
		if key.Kind != yaml.ScalarNode {
			d.fail(key, path, "", fmt.Sprintf("a %s name must be a single value, not %s", what, kindName(key)), "write the name as plain text")
			continue
		}
		if seen[key.Value] {
			d.fail(key, field, "", fmt.Sprintf("%s %q is written twice", what, key.Value), "keep one of them")
			continue
		}
		seen[key.Value] = true
		d.at(key, field)
		each(key, value, field)
	}
}

// namedMapping reads a mapping from user-chosen names to values (services,
// subnets, env), in file order.
func (d *decoder) namedMapping(n *yaml.Node, path, what, example string, each func(name string, value *yaml.Node, field string)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "", fmt.Sprintf("must be a mapping from %s name to its definition, not %s", what, kindName(n)), "write it like "+example)
		return
	}
	d.entries(n, path, what, func(key, value *yaml.Node, field string) {
		each(key.Value, value, field)
	})
	d.mergeNamed(n, path, what, each)
}

// mergeNamed applies merge keys (<<: *anchor) in a mapping of user-chosen
// names (services, subnets, env).
func (d *decoder) mergeNamed(n *yaml.Node, path, what string, each func(name string, value *yaml.Node, field string)) {
	d.merged(n, path, "`<<: *common`", func(k, v *yaml.Node, field string) {
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "", fmt.Sprintf("a %s name must be a single value, not %s", what, kindName(k)), "write the name as plain text")
			return
		}
		d.at(k, field)
		each(k.Value, v, field)
	})
}

func (d *decoder) list(n *yaml.Node, path, example string) []*yaml.Node {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "", fmt.Sprintf("must be a list, not %s", kindName(n)), "write it like "+example)
		return nil
	}
	return n.Content
}

func (d *decoder) scalar(n *yaml.Node, path string) (*yaml.Node, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "", fmt.Sprintf("must be a single value, not %s", kindName(n)), "write one value after the colon")
		return nil, false
	}
	return n, true
}

func (d *decoder) str(n *yaml.Node, path string) string {
	s, ok := d.scalar(n, path)
	if !ok || isNull(s) {
		return ""
	}
	return s.Value
}

func (d *decoder) integer(n *yaml.Node, path string) int {
	s, ok := d.scalar(n, path)
	if !ok || isNull(s) {
		return 0
	}
	v, err := strconv.Atoi(s.Value)
	if err != nil {
		d.fail(s, path, s.Value, "must be a whole number", "write digits only, e.g. 8080")
		return 0
	}
	if v == 0 {
		d.zeros[path] = s
	}
	return v
}

func (d *decoder) integer64(n *yaml.Node, path string) int64 {
	s, ok := d.scalar(n, path)
	if !ok || isNull(s) {
		return 0
	}
	v, err := strconv.ParseInt(s.Value, 10, 64)
	if err != nil {
		d.fail(s, path, s.Value, "must be a whole number", "write digits only, e.g. 1048576")
		return 0
	}
	if v == 0 {
		d.zeros[path] = s
	}
	return v
}

func (d *decoder) strings(n *yaml.Node, path, example string) []string {
	var out []string
	for i, item := range d.list(n, path, example) {
		out = append(out, d.str(item, index(path, i)))
	}
	return out
}

func (d *decoder) duration(n *yaml.Node, path string) Duration {
	s, ok := d.scalar(n, path)
	if !ok || isNull(s) {
		return Duration{}
	}
	var v Duration
	if err := v.UnmarshalYAML(s); err != nil {
		d.fail(s, path, s.Value, err.Error(), "write it like 500ms, 2s or 1m (a bare number means seconds)")
		return Duration{}
	}
	if v.Duration == 0 {
		d.zeros[path] = s
	}
	return v
}

func (d *decoder) addr(n *yaml.Node, path string) netip.Addr {
	s, ok := d.scalar(n, path)
	if !ok || isNull(s) {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s.Value)
	switch {
	case err != nil && strings.Contains(s.Value, "/"):
		d.fail(s, path, s.Value, "must be an address without a prefix length", "drop the /"+strings.SplitN(s.Value, "/", 2)[1])
	case err != nil:
		d.fail(s, path, s.Value, "not an IP address", "write an IPv4 address like 10.10.0.5")
	case !a.Is4():
		d.fail(s, path, s.Value, "only IPv4 addresses are supported", "write an IPv4 address like 10.10.0.5")
	default:
		return a
	}
	return netip.Addr{}
}

func (d *decoder) prefix(n *yaml.Node, path string) netip.Prefix {
	s, ok := d.scalar(n, path)
	if !ok || isNull(s) {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s.Value)
	switch {
	case err != nil:
		d.fail(s, path, s.Value, "not a CIDR", "write a network and prefix length like 192.168.1.0/24")
	case !p.Addr().Is4():
		d.fail(s, path, s.Value, "only IPv4 networks are supported", "write an IPv4 CIDR like 192.168.1.0/24")
	case p.Masked() != p:
		d.fail(s, path, s.Value, "has bits set after the prefix length", "write the network address: "+p.Masked().String())
	default:
		return p
	}
	return netip.Prefix{}
}

// syntaxLine matches the position yaml.v3 puts in its syntax errors.
var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxProblem turns a YAML syntax error into a Problem with a line and
// column. yaml.v3 reports only a line, and often the line where the enclosing
// construct starts; the shortest prefix of the file that fails with the same
// message pinpoints where the error really is.
func syntaxProblem(data []byte, err error) Problem {
	msg := strings.TrimPrefix(syntaxLine.ReplaceAllString(err.Error(), "yaml: "), "yaml: ")
	line := 0
	if m := syntaxLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	lines := strings.Split(string(data), "\n")
	if l := firstFailingPrefix(lines, err); l > 0 {
		line = l
	}
	column := 0
	fix := "correct the YAML syntax at this line (indent with spaces, close brackets and quotes)"
	if line >= 1 && line <= len(lines) {
		text := lines[line-1]
		indent := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
		column = len(indent) + 1
		if tab := strings.IndexByte(indent, '\t'); tab >= 0 {
			column = tab + 1
			fix = "indent with spaces, not tabs"
		}
	}
	return Problem{Field: "(yaml)", Message: msg, Fix: fix, Line: line, Column: column}
}

// firstFailingPrefix finds the shortest prefix of lines (a count of lines)
// that fails to parse with the same message as err, by binary search: about
// log2(lines) parses, so a big file's syntax error is located in O(n log n)
// rather than the O(n^2) of trying every prefix. 0 when none was found.
func firstFailingPrefix(lines []string, err error) int {
	want := syntaxLine.ReplaceAllString(err.Error(), "yaml: ")
	fails := func(i int) bool {
		var n yaml.Node
		perr := yaml.Unmarshal([]byte(strings.Join(lines[:i], "\n")), &n)
		return perr != nil && syntaxLine.ReplaceAllString(perr.Error(), "yaml: ") == want
	}
	if !fails(len(lines)) {
		return 0
	}
	lo, hi := 0, len(lines) // fails(hi) holds; fails(lo) is taken as false
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}
