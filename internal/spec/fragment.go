package spec

import (
	"gopkg.in/yaml.v3"
)

// DecodeTop decodes the cluster-wide keys of a cluster file (everything but
// services: name, network, overlay, hosts, routes, publish, vips, ...) from
// data, a YAML mapping written as in weft.yaml. It applies no defaults and
// does not validate: the caller adds the services and calls Finish. It is
// how another input format (a compose file's x-weft extension) reuses the
// cluster file's own decoding, field names and errors.
func DecodeTop(data []byte) (*Cluster, Problems) {
	if p := CheckSize(data); p != nil {
		return nil, Problems{*p}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{syntaxProblem(data, err)}
	}
	c := &Cluster{}
	if len(root.Content) == 0 {
		return c, nil
	}
	if p := checkExpansion(&root); p != nil {
		return nil, Problems{*p}
	}
	top := resolve(root.Content[0])
	if top.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value == "services" {
				return nil, Problems{{Field: "services", Message: "the services come from the compose file, not from its cluster settings",
					Fix: "move the services to the compose file's services:"}}
			}
		}
	}
	d := newDecoder()
	d.cluster(top, c)
	if ps := append(d.problems, d.writtenZeroProblems()...); len(ps) > 0 {
		return nil, ps
	}
	return c, nil
}

// Finish applies the defaults to a cluster built in code and validates it,
// returning (nil, Problems) with every problem, as Parse does for a file.
func Finish(c *Cluster) (*Cluster, error) {
	c.ApplyDefaults()
	if ps := c.Validate(); len(ps) > 0 {
		return nil, ps
	}
	return c, nil
}
