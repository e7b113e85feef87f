package compose

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/weft-dev/weft/internal/spec"
)

// header is the x-weft every case shares unless it brings its own.
const header = `
name: cmp-test
x-weft:
  network: {cidr: 192.168.0.0/16, subnets: {a: 192.168.1.0/24, b: 192.168.2.0/24}}
  overlay: {vni: 446}
  hosts: [{name: host1, subnet: a}, {name: host2, subnet: b}]
`

// project loads a compose document the way Load does, from memory.
func project(t *testing.T, doc string) *types.Project {
	t.Helper()
	dir := t.TempDir()
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: dir + "/compose.yaml", Content: []byte(doc)}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("cmp-test", true) })
	if err != nil {
		t.Fatalf("compose-go refused the test document: %v\n%s", err, doc)
	}
	return p
}

func translate(t *testing.T, doc string) (*spec.Cluster, spec.Problems) {
	t.Helper()
	c, err := Translate(project(t, doc))
	if err == nil {
		return c, nil
	}
	var ps spec.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Translate: %v (not Problems)", err)
	}
	return nil, ps
}

func service(t *testing.T, c *spec.Cluster, name string) spec.Service {
	t.Helper()
	s, ok := c.ServiceByName(name)
	if !ok {
		t.Fatalf("no service %s in %+v", name, c.Services)
	}
	return s
}

func TestTranslateMapsFields(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, c *spec.Cluster)
	}{
		{"image command entrypoint user workdir", `
services:
  web:
    image: registry:5000/shop/web:v1
    x-other-tool: {ignored: true}
    entrypoint: [/app/web]
    command: [-listen, ":8080"]
    user: "65534"
    working_dir: /srv
`, func(t *testing.T, c *spec.Cluster) {
			s := service(t, c, "web")
			if s.Image != "registry:5000/shop/web:v1" || !slices.Equal(s.Entrypoint, []string{"/app/web"}) ||
				!slices.Equal(s.Command, []string{"-listen", ":8080"}) || s.User != "65534" || s.Workdir != "/srv" {
				t.Errorf("got %+v", s)
			}
			if s.Replicas != 1 || s.Restart != spec.RestartAlways {
				t.Errorf("replicas %d restart %q, want 1 and always", s.Replicas, s.Restart)
			}
		}},
		{"provider weft: a host binary", `
services:
  gw:
    provider: {type: weft}
    command: [weft, gateway]
`, func(t *testing.T, c *spec.Cluster) {
			if s := service(t, c, "gw"); s.Image != "" || !slices.Equal(s.Command, []string{"weft", "gateway"}) {
				t.Errorf("got %+v", s)
			}
		}},
		{"environment and replicas", `
services:
  web:
    image: web:v1
    environment: [A=1, B=two]
    deploy: {replicas: 3}
    restart: "no"
`, func(t *testing.T, c *spec.Cluster) {
			s := service(t, c, "web")
			if s.Env["A"] != "1" || s.Env["B"] != "two" || s.Replicas != 3 || s.Restart != spec.RestartNever {
				t.Errorf("got env %v replicas %d restart %q", s.Env, s.Replicas, s.Restart)
			}
		}},
		{"healthcheck CMD", `
services:
  web:
    image: web:v1
    healthcheck: {test: [CMD, wget, -q, http://localhost/health], interval: 2s, timeout: 3s, retries: 5, start_period: 10s}
`, func(t *testing.T, c *spec.Cluster) {
			h := service(t, c, "web").Health
			if h == nil || !slices.Equal(h.Exec, []string{"wget", "-q", "http://localhost/health"}) ||
				h.Interval.Duration != 2*time.Second || h.Timeout.Duration != 3*time.Second ||
				h.Retries != 5 || h.StartPeriod.Duration != 10*time.Second {
				t.Errorf("got %+v", h)
			}
		}},
		{"healthcheck CMD-SHELL string", `
services:
  web:
    image: web:v1
    healthcheck: {test: "pg_isready -U shop || exit 1"}
`, func(t *testing.T, c *spec.Cluster) {
			h := service(t, c, "web").Health
			if h == nil || !slices.Equal(h.Exec, []string{"/bin/sh", "-c", "pg_isready -U shop || exit 1"}) || h.Interval.Duration != time.Second {
				t.Errorf("got %+v, want sh -c and weft's default interval", h)
			}
		}},
		{"healthcheck NONE and disable", `
services:
  svc-a: {image: a:v1, healthcheck: {test: [NONE]}}
  svc-b: {image: b:v1, healthcheck: {disable: true}}
`, func(t *testing.T, c *spec.Cluster) {
			if service(t, c, "svc-a").Health != nil || service(t, c, "svc-b").Health != nil {
				t.Error("a disabled healthcheck still gives a weft health check")
			}
		}},
		{"depends_on conditions", `
services:
  web:
    image: web:v1
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
  db: {image: db:v1}
  cache: {image: cache:v1}
`, func(t *testing.T, c *spec.Cluster) {
			if got := service(t, c, "web").DependsOn; !slices.Equal(got, []string{"cache", "db"}) {
				t.Errorf("depends_on %v", got)
			}
		}},
		{"ports go through the publisher on the loopback", `
services:
  web:
    image: web:v1
    ports: ["18080:8080", "127.0.0.2:18443:8443", "19000-19001:9000-9001"]
`, func(t *testing.T, c *spec.Cluster) {
			if len(c.Publish) != 4 || c.Publish[3].Listen != "127.0.0.1:19001" || c.Publish[3].Port != 9001 {
				t.Fatalf("a range is one publish per port; got %+v", c.Publish)
			}
			c.Publish = c.Publish[:2]
			want := []spec.Publish{
				{Listen: "127.0.0.1:18080", Services: []string{"web"}, Port: 8080},
				{Listen: "127.0.0.2:18443", Services: []string{"web"}, Port: 8443},
			}
			if len(c.Publish) != 2 || c.Publish[0].Listen != want[0].Listen || c.Publish[0].Port != 8080 ||
				c.Publish[1].Listen != want[1].Listen || !slices.Equal(c.Publish[1].Services, []string{"web"}) {
				t.Errorf("publish %+v, want %+v", c.Publish, want)
			}
			if p := service(t, c, "web").Port; p != 8080 {
				t.Errorf("service port %d, want the first target 8080", p)
			}
		}},
		{"named volumes", `
services:
  db:
    image: postgres:16
    volumes: [pgdata:/var/lib/postgresql/data]
volumes:
  pgdata: {}
`, func(t *testing.T, c *spec.Cluster) {
			v := service(t, c, "db").Volumes
			if len(v) != 1 || v[0] != (spec.Volume{Name: "pgdata", Path: "/var/lib/postgresql/data"}) {
				t.Errorf("volumes %+v", v)
			}
		}},
		{"ipv4_address pins the overlay address; ipam subnet is the overlay", `
services:
  web:
    image: web:v1
    networks:
      back: {ipv4_address: 10.30.0.7}
networks:
  back:
    ipam: {config: [{subnet: 10.30.0.0/16}]}
`, func(t *testing.T, c *spec.Cluster) {
			if ip := service(t, c, "web").IP; ip != netip.MustParseAddr("10.30.0.7") {
				t.Errorf("ip %v", ip)
			}
			if c.Overlay.CIDR != netip.MustParsePrefix("10.30.0.0/16") {
				t.Errorf("overlay cidr %v", c.Overlay.CIDR)
			}
		}},
		{"an external network (seed 000's br-vxlan) is the overlay", `
services:
  gateway:
    image: gw:v1
    networks:
      br-vxlan: {ipv4_address: 10.10.0.100}
networks:
  br-vxlan: {external: true}
`, func(t *testing.T, c *spec.Cluster) {
			if ip := service(t, c, "gateway").IP; ip != netip.MustParseAddr("10.10.0.100") {
				t.Errorf("ip %v", ip)
			}
		}},
		{"update_config and stop_grace_period", `
services:
  web:
    image: web:v1
    stop_grace_period: 30s
    deploy:
      replicas: 4
      update_config: {parallelism: 0, delay: 2s, order: stop-first, monitor: 10s, failure_action: pause, max_failure_ratio: 0.25}
  api:
    image: api:v1
`, func(t *testing.T, c *spec.Cluster) {
			s := service(t, c, "web")
			want := spec.Update{Parallelism: 4, Delay: spec.Duration{Duration: 2 * time.Second}, Order: spec.OrderStopFirst,
				Monitor: spec.Duration{Duration: 10 * time.Second}, FailureAction: spec.FailurePause, MaxFailureRatio: 0.25}
			if s.Update == nil || *s.Update != want || s.StopGrace.Duration != 30*time.Second {
				t.Errorf("update %+v stop_grace %v, want %+v and 30s", s.Update, s.StopGrace, want)
			}
			if u := service(t, c, "api").Update; u == nil || u.Parallelism != 1 || u.FailureAction != spec.FailureRollback {
				t.Errorf("api update %+v, want weft's defaults", u)
			}
		}},
		{"resources limits", `
services:
  web:
    image: web:v1
    deploy: {resources: {limits: {memory: 256M, cpus: "0.5", pids: 100}}}
`, func(t *testing.T, c *spec.Cluster) {
			r := service(t, c, "web").Resources
			if r == nil || r.Memory != 256<<20 || r.CPU != 0.5 || r.Pids != 100 {
				t.Errorf("resources %+v", r)
			}
		}},
		{"x-weft placement and cluster keys", `
services:
  svc-a: {image: a:v1, x-weft: {host: host2}}
  svc-b: {image: b:v1, deploy: {replicas: 2}, x-weft: {hosts: [host1, host2]}}
`, func(t *testing.T, c *spec.Cluster) {
			if service(t, c, "svc-a").Host != "host2" || !slices.Equal(service(t, c, "svc-b").Hosts, []string{"host1", "host2"}) {
				t.Errorf("placement a=%q b=%v", service(t, c, "svc-a").Host, service(t, c, "svc-b").Hosts)
			}
			if c.Name != "cmp-test" || len(c.Hosts) != 2 || c.Hosts[1].Subnet != "b" {
				t.Errorf("cluster name %q hosts %+v", c.Name, c.Hosts)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ps := translate(t, header+tt.doc)
			if ps != nil {
				t.Fatalf("unexpected problems:\n%v", ps)
			}
			tt.check(t, c)
		})
	}
}

func TestTranslateReportsWhatWeftCannotHonour(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		fields []string // every one must be reported, with a fix
	}{
		{"build cap_add privileged network_mode", `
services:
  web:
    image: web:v1
    build: .
    cap_add: [NET_ADMIN]
    privileged: true
  side: {image: side:v1, network_mode: host}
`, []string{"services.web.build", "services.web.cap_add", "services.web.privileged", "services.side.network_mode"}},
		{"deploy parts", `
services:
  web:
    image: web:v1
    deploy:
      rollback_config: {parallelism: 1}
      placement: {constraints: [node.role==manager]}
      resources: {reservations: {memory: 64M}}
      mode: global
`, []string{"services.web.deploy.rollback_config", "services.web.deploy.placement", "services.web.deploy.resources.reservations", "services.web.deploy.mode"}},
		{"bind mount, tmpfs, anonymous and read-only volumes", `
services:
  web:
    image: web:v1
    volumes: ["./conf:/etc/conf", "/cache", "data:/data:ro", {type: tmpfs, target: /tmp}]
volumes:
  data: {}
`, []string{"services.web.volumes[0]", "services.web.volumes[1]", "services.web.volumes[2].read_only", "services.web.volumes[3].type"}},
		{"ports: udp, other host_ip", `
services:
  web:
    image: web:v1
    ports: ["53:53/udp", "0.0.0.0:8080:80"]
`, []string{"services.web.ports[0].protocol", "services.web.ports[1].host_ip"}},
		{"depends_on completed and restart", `
services:
  web:
    image: web:v1
    depends_on:
      migrate: {condition: service_completed_successfully}
      db: {condition: service_started, restart: true}
  migrate: {image: m:v1}
  db: {image: db:v1}
`, []string{"services.web.depends_on.migrate.condition", "services.web.depends_on.db.restart"}},
		{"healthcheck without test, start_interval", `
services:
  a: {image: a:v1, healthcheck: {interval: 1s}}
  b: {image: b:v1, healthcheck: {test: [CMD, "true"], start_interval: 1s}}
`, []string{"services.a.healthcheck.test", "services.b.healthcheck.start_interval"}},
		{"networks: aliases, two addresses, driver", `
services:
  web:
    image: web:v1
    networks:
      front: {ipv4_address: 10.10.0.5, aliases: [www]}
      back: {ipv4_address: 10.10.0.6}
networks:
  front: {driver: macvlan}
  back: {}
`, []string{"services.web.networks.front.aliases", "services.web.networks.front.ipv4_address", "networks.front.driver"}},
		{"restart count, secrets", `
services:
  web: {image: web:v1, restart: "on-failure:3", secrets: [token]}
secrets:
  token: {environment: HOME}
`, []string{"services.web.restart", "services.web.secrets", "secrets"}},
		{"profiles", `
services:
  web: {image: web:v1}
  debug: {image: debug:v1, profiles: [debug]}
`, []string{"services.debug.profiles"}},
		{"provider: another type, options, with an image, without a command", `
services:
  a: {provider: {type: awesomecloud}, command: [x]}
  b: {provider: {type: weft, options: {size: [big]}}, command: [x]}
  c: {provider: {type: weft}, image: c:v1, command: [x]}
  d: {provider: {type: weft}}
`, []string{"services.a.provider.type", "services.b.provider.options", "services.c.image", "services.d.command"}},
		{"service x-weft unknown key", `
services:
  web: {image: web:v1, x-weft: {hots: host1}}
`, []string{"services.web.x-weft.hots"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ps := translate(t, header+tt.doc)
			for _, f := range tt.fields {
				if !ps.Has(f) {
					t.Errorf("no problem for %s; got:\n%v", f, ps)
				}
			}
			for _, p := range ps {
				if p.Fix == "" {
					t.Errorf("%s: no fix given", p.Field)
				}
			}
		})
	}
}

func TestTranslateNamesComposeFieldsInValidation(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		field string
	}{
		{"pinned address outside the overlay", header + `
services:
  web:
    image: web:v1
    networks: {back: {ipv4_address: 172.16.0.5}}
networks: {back: {}}
`, "services.web.networks.back.ipv4_address"},
		{"unknown host in x-weft", header + `
services:
  web: {image: web:v1, x-weft: {host: hots1}}
`, "services.web.x-weft.host"},
		{"pinned address with replicas", header + `
services:
  web:
    image: web:v1
    deploy: {replicas: 2}
    networks: {back: {ipv4_address: 10.10.0.5}}
networks: {back: {}}
`, "services.web.networks.back.ipv4_address"},
		{"bad environment name", header + `
services:
  web: {image: web:v1, environment: {"1BAD": x}}
`, "services.web.environment.1BAD"},
		{"bad x-weft network", `
name: cmp-test
x-weft:
  network: {cidr: 8.8.0.0/16, subnets: {a: 8.8.1.0/24}}
  hosts: [{name: host1, subnet: a}]
services:
  web: {image: web:v1}
`, "x-weft.network.cidr"},
		{"unknown x-weft key", `
name: cmp-test
x-weft:
  netwrok: {}
services:
  web: {image: web:v1}
`, "x-weft.netwrok"},
		{"missing x-weft", `
name: cmp-test
services:
  web: {image: web:v1}
`, "x-weft"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ps := translate(t, tt.doc)
			if c != nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !ps.Has(tt.field) {
				t.Errorf("no problem named %s; got:\n%v", tt.field, ps)
			}
		})
	}
}

func TestRenameKeepsTheRestOfThePath(t *testing.T) {
	tr := &translation{renames: map[string]string{"services.web.health": "services.web.healthcheck"}}
	if got := tr.rename("services.web.health.interval"); got != "services.web.healthcheck.interval" {
		t.Errorf("got %s", got)
	}
	if got := tr.rename("services.db.port"); got != "services.db.port" {
		t.Errorf("an unrecorded field changed: %s", got)
	}
	if strings.Contains(tr.rename("hosts[0].subnet"), "x-weft") {
		t.Error("renamed without a record")
	}
}
