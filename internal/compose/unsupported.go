package compose

import (
	"fmt"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/weft-dev/weft/internal/spec"
)

// shape is the part of the compose model weft honours: each key it maps,
// with the shape of its value (nil: the whole value). Every key of the
// loaded model outside it is reported, so that nothing is silently ignored.
type shape map[string]*node

// node is the shape of one value: a mapping of known keys (fields), a list
// whose items have one shape (each), or a mapping keyed by user-chosen
// names whose values have one shape (every).
type node struct {
	fields shape
	each   *node
	every  *node
}

func fields(s shape) *node { return &node{fields: s} }
func each(n *node) *node   { return &node{each: n} }
func every(n *node) *node  { return &node{every: n} }

var serviceShape = shape{
	"image": nil, "command": nil, "entrypoint": nil, "environment": nil,
	"env_file":    nil, // merged into environment by the loader
	"working_dir": nil, "user": nil, "restart": nil, "expose": nil, Extension: nil,
	"stop_grace_period": nil,
	"labels":            nil, // metadata only: nothing in weft reads them
	"depends_on":        every(fields(shape{"condition": nil, "required": nil, "restart": nil})),
	"healthcheck": fields(shape{"test": nil, "interval": nil, "timeout": nil, "retries": nil,
		"start_period": nil, "disable": nil}),
	"deploy": fields(shape{"replicas": nil, "mode": nil,
		"update_config": fields(shape{"parallelism": nil, "delay": nil, "order": nil, "monitor": nil,
			"failure_action": nil, "max_failure_ratio": nil}),
		"resources": fields(shape{"limits": fields(shape{"memory": nil, "cpus": nil, "pids": nil})})}),
	"ports": each(fields(shape{"target": nil, "published": nil, "protocol": nil, "mode": nil,
		"host_ip": nil, "name": nil, "app_protocol": nil})),
	"volumes":  each(fields(shape{"type": nil, "source": nil, "target": nil, "read_only": nil, "volume": fields(shape{})})),
	"networks": every(fields(shape{"ipv4_address": nil})),
	"provider": fields(shape{"type": nil}), // type weft: a host binary (provider.go)
}

// external: true (seed 000's br-vxlan, the bridge of a VXLAN set up
// beforehand) names a network that exists already: in weft, the overlay.
var projectNetworkShape = fields(shape{"name": nil, "driver": nil, "external": nil,
	"ipam": fields(shape{"config": each(fields(shape{"subnet": nil}))})})

var projectVolumeShape = fields(shape{"name": nil})

// fixes says what to do instead, for the keys users write most.
var fixes = map[string]string{
	"build":           "build the image first (weft image build) and use image:",
	"cap_add":         "remove it: weft containers get a fixed set of capabilities",
	"cap_drop":        "remove it: weft containers get a fixed set of capabilities",
	"privileged":      "remove it: weft never runs privileged containers",
	"network_mode":    "remove it: every weft container is on the cluster's overlay",
	"container_name":  "remove it: weft names containers SERVICE-N",
	"hostname":        "remove it: a container's name is SERVICE-N." + spec.DefaultDomain,
	"aliases":         "remove it and use the service's name: weft's DNS answers SERVICE and SERVICE-N",
	"rollback_config": "remove it: a failed update rolls back with the update_config's settings",
	"placement":       "use the service's x-weft: {host: NAME} or {hosts: [NAMES]}",
	"reservations":    "remove it: weft limits resources, it does not reserve them",
	"restart_policy":  "use the service's restart: (no, always, on-failure)",
	"mem_limit":       "use deploy.resources.limits.memory",
	"cpus":            "use deploy.resources.limits.cpus",
	"pids_limit":      "use deploy.resources.limits.pids",
	"secrets":         "pass the value through environment or a named volume",
	"configs":         "put the file in the image, or in a named volume",
	"start_interval":  "remove it: weft checks at interval from the start",
	"ipam":            "only ipam.config[].subnet is read (the overlay's CIDR)",
	"driver":          "remove it: weft's volumes are directories on the container's host",
	"profiles":        "remove profiles: weft has no --profile and runs every service of the file",
	"options":         "remove it: provider weft takes only type; the command says what runs",
}

// unsupportedInService reports every key of a service weft does not honour.
func unsupportedInService(svc types.ServiceConfig) spec.Problems {
	var ps spec.Problems
	walk(&ps, "services."+svc.Name, svc, fields(serviceShape))
	if svc.Deploy != nil && svc.Deploy.Mode != "" && svc.Deploy.Mode != "replicated" {
		ps = append(ps, spec.Problem{Field: "services." + svc.Name + ".deploy.mode", Value: svc.Deploy.Mode,
			Message: "not supported by weft: a service runs deploy.replicas containers", Fix: "write mode: replicated, or leave it out, and place the replicas with x-weft: {hosts: [...]}"})
	}
	return ps
}

// unsupportedInProject reports the top-level keys and the parts of
// networks and volumes weft does not honour.
func unsupportedInProject(p *types.Project) spec.Problems {
	var ps spec.Problems
	for _, name := range sortedKeys(p.Networks) {
		n := p.Networks[name]
		walk(&ps, "networks."+name, n, projectNetworkShape)
		if n.Driver != "" && n.Driver != "bridge" && n.Driver != "overlay" {
			ps = append(ps, spec.Problem{Field: "networks." + name + ".driver", Value: n.Driver,
				Message: "not supported by weft: every network is weft's VXLAN overlay", Fix: "write driver: overlay or bridge, or leave it out"})
		}
	}
	for _, name := range sortedKeys(p.Volumes) {
		walk(&ps, "volumes."+name, p.Volumes[name], projectVolumeShape)
	}
	// Services of inactive profiles are dropped by compose-go: say so.
	for _, name := range sortedKeys(p.DisabledServices) {
		ps = append(ps, notSupported("services."+name+".profiles"))
	}
	for _, key := range []struct {
		name string
		n    int
	}{{"secrets", len(p.Secrets)}, {"configs", len(p.Configs)}, {"models", len(p.Models)}} {
		if key.n > 0 {
			ps = append(ps, notSupported(key.name))
		}
	}
	return ps
}

// walk marshals v as the compose model writes it and reports every key
// outside n.
func walk(ps *spec.Problems, path string, v any, n *node) {
	out, err := yaml.Marshal(v)
	if err != nil {
		*ps = append(*ps, spec.Problem{Field: path, Message: fmt.Sprintf("cannot be read back: %v", err), Fix: "simplify it"})
		return
	}
	var tree any
	if err := yaml.Unmarshal(out, &tree); err != nil {
		*ps = append(*ps, spec.Problem{Field: path, Message: fmt.Sprintf("cannot be read back: %v", err), Fix: "simplify it"})
		return
	}
	check(ps, path, tree, n)
}

func check(ps *spec.Problems, path string, v any, n *node) {
	if n == nil || v == nil {
		return
	}
	switch {
	case n.fields != nil:
		m, ok := v.(map[string]any)
		if !ok {
			return // the loader checked the types
		}
		for _, k := range sortedKeys(m) {
			child, known := n.fields[k]
			if !known {
				if isEmpty(m[k]) || strings.HasPrefix(k, "x-") {
					continue // defaults the loader wrote (an empty volume: {}), or another tool's extension
				}
				*ps = append(*ps, notSupported(path+"."+k))
				continue
			}
			check(ps, path+"."+k, m[k], child)
		}
	case n.each != nil:
		list, _ := v.([]any)
		for i, item := range list {
			check(ps, fmt.Sprintf("%s[%d]", path, i), item, n.each)
		}
	case n.every != nil:
		m, _ := v.(map[string]any)
		for _, k := range sortedKeys(m) {
			check(ps, path+"."+k, m[k], n.every)
		}
	}
}

func notSupported(field string) spec.Problem {
	key := field[strings.LastIndexAny(field, ".]")+1:]
	fix, ok := fixes[key]
	if !ok {
		fix = "remove it; see docs/compose.md for what weft maps"
	}
	return spec.Problem{Field: field, Message: "not supported by weft", Fix: fix}
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	case bool:
		return !v
	case string:
		return v == ""
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
