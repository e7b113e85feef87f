package compose

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weft-dev/weft/internal/spec"
)

// locate gives each problem the line and column of its field in the
// compose file, or of the nearest enclosing field that is written there
// (a short-syntax port, a value reused through a YAML alias, a default
// compose-go filled in). compose-go keeps no positions, so they are found
// again in the file's YAML.
func locate(data []byte, ps spec.Problems) {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return
	}
	for i := range ps {
		if n := find(root.Content[0], ps[i].Field); n != nil {
			ps[i].Line, ps[i].Column = n.Line, n.Column
		}
	}
}

// find walks field (services.web.ports[1].host_ip) down from n as far as
// the file has it, returning the key node of the deepest field found.
func find(n *yaml.Node, field string) *yaml.Node {
	var found *yaml.Node
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
				return found
			}
			n = next
		case n.Kind == yaml.SequenceNode && strings.HasPrefix(seg, "["):
			i, err := strconv.Atoi(strings.Trim(seg, "[]"))
			if err != nil || i < 0 || i >= len(n.Content) {
				return found
			}
			n = n.Content[i]
			found = n
		default:
			return found // a scalar, an alias, or a field written another way
		}
	}
	return found
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
