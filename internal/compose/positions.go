package compose

import (
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weft-dev/weft/internal/spec"
)

// source is one compose file's YAML: the file given with -f, or a file it
// includes.
type source struct {
	path string
	root *yaml.Node // the document's top mapping
}

// parseSource reads data as YAML; nil when it is not a YAML document.
func parseSource(path string, data []byte) *source {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	return &source{path: path, root: doc.Content[0]}
}

// locate gives each problem the file, line and column of its field: of
// the field itself, or of the nearest enclosing field that is written
// there (a short-syntax port, a value reused through a YAML alias, a
// default compose-go filled in). compose-go keeps no positions, so they
// are found again in the files' YAML. Of several files (the -f file and
// those it includes), the one that has most of the field's path wins; on a
// tie, the first.
func locate(files []*source, ps spec.Problems) {
	for i := range ps {
		best := 0
		for _, f := range files {
			if f == nil {
				continue
			}
			if n, depth := find(f.root, ps[i].Field); n != nil && depth > best {
				best = depth
				ps[i].File, ps[i].Line, ps[i].Column = f.path, n.Line, n.Column
			}
		}
	}
}

// included lists the files the top-level include of the document at path
// names (short syntax, or path: one or a list), each read as a source.
// Files that cannot be read are left out: compose-go reported them.
func included(path string, top *source) []*source {
	if top == nil || top.root.Kind != yaml.MappingNode {
		return nil
	}
	var inc *yaml.Node
	for i := 0; i+1 < len(top.root.Content); i += 2 {
		if top.root.Content[i].Value == "include" {
			inc = top.root.Content[i+1]
		}
	}
	if inc == nil || inc.Kind != yaml.SequenceNode {
		return nil
	}
	var names []string
	for _, item := range inc.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			names = append(names, item.Value)
		case yaml.MappingNode:
			for i := 0; i+1 < len(item.Content); i += 2 {
				if item.Content[i].Value != "path" {
					continue
				}
				if v := item.Content[i+1]; v.Kind == yaml.ScalarNode {
					names = append(names, v.Value)
				} else {
					for _, p := range v.Content {
						names = append(names, p.Value)
					}
				}
			}
		}
	}
	var out []*source
	for _, name := range names {
		file := name
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(path), name)
		}
		if data, err := spec.ReadCapped(file); err == nil {
			out = append(out, parseSource(file, data))
		}
	}
	return out
}

// find walks field (services.web.ports[1].host_ip) down from n as far as
// the file has it, returning the key node of the deepest field found and
// how many of the path's segments it matched.
func find(n *yaml.Node, field string) (*yaml.Node, int) {
	var found *yaml.Node
	depth := 0
	for _, seg := range segments(field) {
		switch {
		case n.Kind == yaml.MappingNode && !strings.HasPrefix(seg, "["):
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg {
					found, next = n.Content[i], n.Content[i+1]
					break
				}
			}
			if next == nil {
				return found, depth
			}
			n = next
			depth++
		case n.Kind == yaml.SequenceNode && strings.HasPrefix(seg, "["):
			i, err := strconv.Atoi(strings.Trim(seg, "[]"))
			if err != nil || i < 0 || i >= len(n.Content) {
				return found, depth
			}
			n = n.Content[i]
			found = n
			depth++
		default:
			return found, depth // a scalar, an alias, or a field written another way
		}
	}
	return found, depth
}

// segments splits services.web.ports[1].host_ip into services, web,
// ports, [1], host_ip.
func segments(field string) []string {
	var out []string
	for _, part := range strings.Split(field, ".") {
		for part != "" {
			i := strings.IndexByte(part[1:], '[')
			if i < 0 {
				out = append(out, part)
				break
			}
			out = append(out, part[:i+1])
			part = part[i+1:]
		}
	}
	return out
}
