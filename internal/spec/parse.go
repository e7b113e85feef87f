package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Load reads, defaults and validates the cluster file at path. Every problem
// of the file comes back at once as Problems.
func Load(path string) (*Cluster, error) {
	data, err := ReadCapped(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Problems{{Field: "-f", Value: path, Message: "the cluster file does not exist",
			Fix: "run weft in the directory of your weft.yaml, or pass another file with -f FILE"}}
	}
	if err != nil {
		return nil, Problems{{Field: "-f", Value: path, Message: fmt.Sprintf("cannot read the cluster file: %v", err),
			Fix: "check the file's permissions, or pass another file with -f FILE"}}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving the directory of %s: %w", path, err)
	}
	c, err := Parse(data, filepath.Dir(abs))
	var problems Problems
	if errors.As(err, &problems) {
		for i := range problems {
			problems[i].File = path
		}
		return nil, problems
	}
	return c, err
}

// Parse decodes a cluster file, applies defaults and validates it. dir is the
// file's directory: relative command paths resolve against it. On any problem
// it returns (nil, Problems) with all problems of the file, in file order.
func Parse(data []byte, dir string) (*Cluster, error) {
	if dir != "" && !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("resolving directory %s: %w", dir, err)
		}
		dir = abs
	}
	if p := CheckSize(data); p != nil {
		return nil, Problems{*p}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{syntaxProblem(data, err)}
	}
	if p := checkExpansion(&root); p != nil {
		return nil, Problems{*p}
	}
	c := &Cluster{Dir: dir}
	d := newDecoder()
	if len(root.Content) == 0 {
		return nil, Problems{{Field: "(file)", Message: "the cluster file is empty",
			Fix: "start from the example in docs/cluster-file.md (version, name, network, overlay, hosts, services)"}}
	}
	d.cluster(root.Content[0], c)
	c.ApplyDefaults()
	problems := append(d.problems, d.writtenZeroProblems()...)
	for _, p := range c.Validate() {
		if d.coveredByDecodeProblem(p.Field) {
			continue
		}
		pos, ok := d.positionOf(p.Field)
		if ok {
			p.Line, p.Column = pos.line, pos.column
		}
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		problems.sortByPosition()
		return nil, problems
	}
	return c, nil
}

// positionOf finds where field, or the nearest enclosing field, was written.
func (d *decoder) positionOf(field string) (position, bool) {
	for f := field; f != ""; f = parentField(f) {
		if pos, ok := d.positions[f]; ok {
			return pos, true
		}
	}
	return position{}, false
}

func (d *decoder) coveredByDecodeProblem(field string) bool {
	for f := field; f != ""; f = parentField(f) {
		if d.undecodable[f] {
			return true
		}
	}
	return false
}

func (d *decoder) cluster(n *yaml.Node, c *Cluster) {
	d.mapping(n, "", fieldReaders{
		"version":  func(v *yaml.Node, p string) { c.Version = d.integer(v, p) },
		"name":     func(v *yaml.Node, p string) { c.Name = d.str(v, p) },
		"provider": func(v *yaml.Node, p string) { c.Provider = d.str(v, p) },
		"ssh":      func(v *yaml.Node, p string) { d.ssh(v, p, &c.SSH) },
		"domain":   func(v *yaml.Node, p string) { c.Domain = d.str(v, p) },
		"network":  func(v *yaml.Node, p string) { d.network(v, p, &c.Network) },
		"overlay":  func(v *yaml.Node, p string) { d.overlay(v, p, &c.Overlay) },
		"hosts": func(v *yaml.Node, p string) {
			for i, item := range d.list(v, p, "- {name: host1, subnet: a}") {
				c.Hosts = append(c.Hosts, d.host(item, index(p, i)))
			}
		},
		"services": func(v *yaml.Node, p string) {
			d.namedMapping(v, p, "service", "`web: {command: [./web], port: 8080}`", func(name string, v *yaml.Node, p string) {
				c.Services = append(c.Services, d.service(name, v, p))
			})
		},
		"routes": func(v *yaml.Node, p string) {
			for i, item := range d.list(v, p, "- {prefix: /api, service: api}") {
				c.Routes = append(c.Routes, d.route(item, index(p, i)))
			}
		},
		"gateway": func(v *yaml.Node, p string) {
			d.mapping(v, p, fieldReaders{
				"max_body_bytes": func(v *yaml.Node, p string) { c.Gateway.MaxBodyBytes = d.integer64(v, p) },
				"metrics_port":   func(v *yaml.Node, p string) { c.Gateway.MetricsPort = d.integer(v, p) },
				"name":           func(v *yaml.Node, p string) { c.Gateway.Name = d.str(v, p) },

				"access_log_sample": func(v *yaml.Node, p string) { c.Gateway.AccessLogSample = d.fraction(v, p) }, // 0..1, see resources.go
			})
		},
		"vips": func(v *yaml.Node, p string) { d.vips(v, p, c) },
		"publish": func(v *yaml.Node, p string) {
			for i, item := range d.list(v, p, "- {listen: 127.0.0.1:8080, services: [gateway]}") {
				c.Publish = append(c.Publish, d.publish(item, index(p, i)))
			}
		},
		"reschedule_after": func(v *yaml.Node, p string) { c.RescheduleAfter = d.rescheduleAfter(v, p) },
		"firewall":         func(v *yaml.Node, p string) { c.Firewall = d.boolean(v, p) },
	})
}

func (d *decoder) network(n *yaml.Node, path string, net *Network) {
	d.mapping(n, path, fieldReaders{
		"cidr": func(v *yaml.Node, p string) { net.CIDR = d.prefix(v, p) },
		"mtu":  func(v *yaml.Node, p string) { net.MTU = d.integer(v, p) },
		"subnets": func(v *yaml.Node, p string) {
			d.namedMapping(v, p, "subnet", "`subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}`", func(name string, v *yaml.Node, p string) {
				net.Subnets = append(net.Subnets, Subnet{Name: name, CIDR: d.prefix(v, p)})
			})
		},
	})
}

func (d *decoder) overlay(n *yaml.Node, path string, o *Overlay) {
	d.mapping(n, path, fieldReaders{
		"vni":    func(v *yaml.Node, p string) { o.VNI = d.integer(v, p) },
		"port":   func(v *yaml.Node, p string) { o.Port = d.integer(v, p) },
		"cidr":   func(v *yaml.Node, p string) { o.CIDR = d.prefix(v, p) },
		"mtu":    func(v *yaml.Node, p string) { o.MTU = d.integer(v, p) },
		"bridge": func(v *yaml.Node, p string) { o.Bridge = d.str(v, p) },
	})
}

func (d *decoder) host(n *yaml.Node, path string) Host {
	var h Host
	d.at(n, path)
	d.mapping(n, path, fieldReaders{
		"name":    func(v *yaml.Node, p string) { h.Name = d.str(v, p) },
		"subnet":  func(v *yaml.Node, p string) { h.Subnet = d.str(v, p) },
		"address": func(v *yaml.Node, p string) { h.Address = d.addr(v, p) },
		"roles":   func(v *yaml.Node, p string) { h.Roles = d.strings(v, p, "[manager]") },

		"install_root": func(v *yaml.Node, p string) { h.InstallRoot = d.str(v, p) },
	})
	return h
}

func (d *decoder) service(name string, n *yaml.Node, path string) Service {
	s := Service{Name: name, Replicas: 1}
	d.mapping(n, path, fieldReaders{
		"command":    func(v *yaml.Node, p string) { s.Command = d.strings(v, p, "[./bin/web, -listen, \":8080\"]") },
		"image":      func(v *yaml.Node, p string) { s.Image = d.str(v, p) },
		"entrypoint": func(v *yaml.Node, p string) { s.Entrypoint = d.strings(v, p, "[/app/web, -listen, \":8080\"]") },
		"env": func(v *yaml.Node, p string) {
			d.namedMapping(v, p, "variable", "`env: {LOG_LEVEL: debug}`", func(key string, v *yaml.Node, p string) {
				if s.Env == nil {
					s.Env = map[string]string{}
				}
				s.Env[key] = d.str(v, p)
			})
		},
		"workdir":    func(v *yaml.Node, p string) { s.Workdir = d.str(v, p) },
		"user":       func(v *yaml.Node, p string) { s.User = d.str(v, p) },
		"host":       func(v *yaml.Node, p string) { s.Host = d.str(v, p) },
		"hosts":      func(v *yaml.Node, p string) { s.Hosts = d.strings(v, p, "[host1, host2]") },
		"ip":         func(v *yaml.Node, p string) { s.IP = d.addr(v, p) },
		"port":       func(v *yaml.Node, p string) { s.Port = d.integer(v, p) },
		"replicas":   func(v *yaml.Node, p string) { s.Replicas = d.integer(v, p) },
		"depends_on": func(v *yaml.Node, p string) { s.DependsOn = d.strings(v, p, "[db, cache]") },
		"restart":    func(v *yaml.Node, p string) { s.Restart = d.str(v, p) },
		"reschedule": func(v *yaml.Node, p string) { s.Reschedule = d.boolean(v, p) },
		"reschedule_after": func(v *yaml.Node, p string) {
			s.RescheduleAfter = d.rescheduleAfter(v, p)
		},
		"resources": func(v *yaml.Node, p string) {
			if v = resolve(v); !isNull(v) {
				s.Resources = d.resources(v, p)
			}
		},
		"health": func(v *yaml.Node, p string) {
			if v = resolve(v); !isNull(v) {
				s.Health = d.health(v, p)
			}
		},
		"stop_grace": func(v *yaml.Node, p string) { s.StopGrace = d.duration(v, p) },
		"userns":     func(v *yaml.Node, p string) { s.UserNS = d.boolean(v, p) },
		"update": func(v *yaml.Node, p string) {
			if v = resolve(v); !isNull(v) {
				s.Update = d.update(v, p)
			}
		},
		"artifacts": func(v *yaml.Node, p string) { s.Artifacts = d.artifacts(v, p) },
		"volumes": func(v *yaml.Node, p string) {
			for i, item := range d.list(v, p, "- {name: data, path: /data}") {
				var vol Volume
				d.mapping(item, index(p, i), fieldReaders{
					"name": func(v *yaml.Node, p string) { vol.Name = d.str(v, p) },
					"path": func(v *yaml.Node, p string) { vol.Path = d.str(v, p) },
				})
				d.at(item, index(p, i))
				s.Volumes = append(s.Volumes, vol)
			}
		},
	})
	return s
}

func (d *decoder) health(n *yaml.Node, path string) *Health {
	h := &Health{}
	d.mapping(n, path, fieldReaders{
		"http":         func(v *yaml.Node, p string) { h.HTTP = d.str(v, p) },
		"tcp":          func(v *yaml.Node, p string) { h.TCP = d.integer(v, p) },
		"exec":         func(v *yaml.Node, p string) { h.Exec = d.strings(v, p, "[pg_isready]") },
		"port":         func(v *yaml.Node, p string) { h.Port = d.integer(v, p) },
		"interval":     func(v *yaml.Node, p string) { h.Interval = d.duration(v, p) },
		"timeout":      func(v *yaml.Node, p string) { h.Timeout = d.duration(v, p) },
		"retries":      func(v *yaml.Node, p string) { h.Retries = d.integer(v, p) },
		"start_period": func(v *yaml.Node, p string) { h.StartPeriod = d.duration(v, p) },
	})
	return h
}

func (d *decoder) route(n *yaml.Node, path string) Route {
	r := Route{Retries: defaultRouteRetries}
	d.at(n, path)
	d.mapping(n, path, fieldReaders{
		"prefix":  func(v *yaml.Node, p string) { r.Prefix = d.str(v, p) },
		"service": func(v *yaml.Node, p string) { r.Service = d.str(v, p) },
		"timeout": func(v *yaml.Node, p string) { r.Timeout = d.duration(v, p) },
		"retries": func(v *yaml.Node, p string) { r.Retries = d.integer(v, p) },
		"backends": func(v *yaml.Node, p string) {
			for i, item := range d.list(v, p, "- {service: product-v1, weight: 90}") {
				var b RouteBackend
				d.mapping(item, index(p, i), fieldReaders{
					"service": func(v *yaml.Node, p string) { b.Service = d.str(v, p) },
					"weight":  func(v *yaml.Node, p string) { b.Weight = d.integer(v, p) },
				})
				r.Backends = append(r.Backends, b)
			}
		},
		"match": func(v *yaml.Node, p string) {
			m := &RouteMatch{}
			d.mapping(v, p, fieldReaders{
				"header":  func(v *yaml.Node, p string) { m.Header = d.str(v, p) },
				"value":   func(v *yaml.Node, p string) { m.Value = d.str(v, p) },
				"service": func(v *yaml.Node, p string) { m.Service = d.str(v, p) },
			})
			r.Match = m
		},
	})
	return r
}

func (d *decoder) publish(n *yaml.Node, path string) Publish {
	var pub Publish
	d.at(n, path)
	d.mapping(n, path, fieldReaders{
		"listen":   func(v *yaml.Node, p string) { pub.Listen = d.str(v, p) },
		"services": func(v *yaml.Node, p string) { pub.Services = d.strings(v, p, "[gateway]") },
		"port":     func(v *yaml.Node, p string) { pub.Port = d.integer(v, p) },
		"vip":      func(v *yaml.Node, p string) { pub.VIP = d.str(v, p) },
	})
	return pub
}

// ReadCapped reads at most MaxFileBytes+1 bytes of path, so that a huge file
// (or /dev/zero) is refused by size instead of read whole. Other readers of
// cluster files (compose) use it too.
func ReadCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
}
