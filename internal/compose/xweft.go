package compose

import (
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/weft-dev/weft/internal/spec"
)

// Extension is the compose file's key for weft's settings: at the top level
// the cluster-wide keys of weft.yaml (name, network, overlay, hosts, routes,
// publish, vips, ...), on a service its placement (host or hosts).
const Extension = "x-weft"

// cluster builds the cluster-wide part: x-weft decoded as weft.yaml's top
// level, the compose project's name when x-weft gives none, and the overlay
// CIDR from the networks' ipam when x-weft gives none.
func (t *translation) cluster(p *types.Project) *spec.Cluster {
	c := &spec.Cluster{}
	if raw, ok := p.Extensions[Extension]; ok && raw != nil {
		data, err := yaml.Marshal(raw)
		if err != nil {
			t.add(Extension, "", fmt.Sprintf("cannot be read: %v", err), "write it as a mapping of weft.yaml's top-level keys")
		} else if top, ps := spec.DecodeTop(data); len(ps) > 0 {
			for _, pr := range ps {
				pr.Field = Extension + "." + pr.Field
				pr.Line, pr.Column = 0, 0 // positions in the re-encoded extension, not in the file
				t.problems = append(t.problems, pr)
			}
		} else {
			c = top
			for _, f := range []string{"version", "name", "provider", "domain", "network", "overlay", "hosts", "routes", "gateway", "vips", "reschedule_after"} {
				t.from(f, Extension+"."+f)
			}
		}
	} else {
		t.add(Extension, "", "missing: weft needs to know the cluster's hosts and subnets",
			"add a top-level x-weft with network and hosts, as in examples/compose/compose.yaml")
	}
	if c.Name == "" {
		c.Name = p.Name
		t.from("name", "name")
	}
	if cidr := t.overlayCIDR(p.Networks); cidr.IsValid() && !c.Overlay.CIDR.IsValid() {
		c.Overlay.CIDR = cidr
	}
	c.Dir = p.WorkingDir
	// publish written in x-weft keeps its own indexes; the ports come after.
	for i := range c.Publish {
		t.from(fmt.Sprintf("publish[%d]", i), fmt.Sprintf("%s.publish[%d]", Extension, i))
	}
	return c
}

// placement reads a service's x-weft: {host: NAME} or {hosts: [NAMES]}.
func (t *translation) placement(path string, ext types.Extensions) (string, []string) {
	raw, ok := ext[Extension]
	if !ok || raw == nil {
		return "", nil
	}
	field := path + "." + Extension
	t.from(path+".host", field+".host")
	t.from(path+".hosts", field+".hosts")
	m, ok := raw.(map[string]any)
	if !ok {
		t.add(field, fmt.Sprint(raw), "must be a mapping", "write e.g. `x-weft: {host: host1}` or `x-weft: {hosts: [host1, host2]}`")
		return "", nil
	}
	var host string
	var hosts []string
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "host":
			s, ok := v.(string)
			if !ok {
				t.add(field+".host", fmt.Sprint(v), "must be a host name", "write e.g. `host: host1`")
			}
			host = s
		case "hosts":
			list, ok := v.([]any)
			if !ok {
				t.add(field+".hosts", fmt.Sprint(v), "must be a list of host names", "write e.g. `hosts: [host1, host2]`")
				continue
			}
			for i, item := range list {
				s, ok := item.(string)
				if !ok {
					t.add(fmt.Sprintf("%s.hosts[%d]", field, i), fmt.Sprint(item), "must be a host name", "write e.g. `hosts: [host1, host2]`")
					continue
				}
				hosts = append(hosts, s)
			}
		default:
			t.add(field+"."+k, "", "unknown field", "a service's x-weft takes host or hosts")
		}
	}
	return host, hosts
}
