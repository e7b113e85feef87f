package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-dev/weft/internal/spec"
)

func TestIsCompose(t *testing.T) {
	tests := []struct {
		path, data string
		want       bool
	}{
		{"compose.yaml", "", true},
		{"x/docker-compose.yml", "version: 1\nprovider: lab\n", true}, // the name decides
		{"stack.yaml", "services:\n  web: {image: web}\n", true},
		{"stack.yaml", "version: '3.8'\nservices:\n  web: {image: web}\n", true},
		{"weft.yaml", "version: 1\nservices:\n  web: {command: [x]}\n", false},
		{"cluster.yaml", "provider: lab\nservices: {}\n", false},
		{"cluster.yaml", "hosts: []\nservices: {}\n", false},
		{"cluster.yaml", "name: x\n", false},
		{"cluster.yaml", "{{{ not yaml", false},
	}
	for _, tt := range tests {
		if got := IsCompose(tt.path, []byte(tt.data)); got != tt.want {
			t.Errorf("IsCompose(%q, %q) = %v, want %v", tt.path, tt.data, got, tt.want)
		}
	}
}

func TestLoadExample(t *testing.T) {
	c, err := Load(context.Background(), "../../examples/compose/compose.yaml")
	if err != nil {
		t.Fatalf("the example compose file: %v", err)
	}
	if c.Name != "cmp-hello" || len(c.Hosts) != 2 || len(c.Services) != 3 || len(c.Publish) != 1 {
		t.Fatalf("got name %q, %d hosts, %d services, publish %+v", c.Name, len(c.Hosts), len(c.Services), c.Publish)
	}
	api, _ := c.ServiceByName("api")
	dir, _ := filepath.Abs("../../examples/compose")
	if want := "docker-archive:" + filepath.Join(dir, "../../bin/hello-image.tar"); api.Image != filepath.Clean(want) && api.Image != want {
		t.Errorf("image %q, want the tarball resolved against the file's directory (%s)", api.Image, want)
	}
	if api.Health == nil || len(api.Health.Exec) == 0 || api.Host != "host1" || api.IP.String() != "10.20.0.5" {
		t.Errorf("api %+v", api)
	}
}

// TestLoadSeed000 loads examples/seed000: one compose.yaml including seed
// 000's three files. Each included file's env_file is read relative to
// that file; the gateways and databases are host binaries (provider weft),
// their command paths resolved against compose.yaml's directory.
func TestLoadSeed000(t *testing.T) {
	c, err := Load(context.Background(), "../../examples/seed000/compose.yaml")
	if err != nil {
		t.Fatalf("the example: %v", err)
	}
	if c.Name != "seed000" || len(c.Hosts) != 3 || len(c.Services) != 10 || len(c.Publish) != 7 {
		t.Fatalf("got name %q, %d hosts, %d services, publish %+v", c.Name, len(c.Hosts), len(c.Services), c.Publish)
	}
	dir, _ := filepath.Abs("../../examples/seed000")
	for name, want := range map[string]string{
		"nginx-gateway-master": "host1 10.10.0.100 weft", "product-service": "host1 10.10.0.5 docker-archive:" + filepath.Join(dir, "../../bin/images/shop.tar"),
		"nginx-gateway-backup": "host2 10.10.0.101 weft", "user-service": "host2 10.10.0.8 docker-archive:" + filepath.Join(dir, "../../bin/images/shop.tar"),
		"mongodb-product": "host3 10.10.0.10 " + filepath.Join(dir, "../../bin/shop"),
	} {
		s, ok := c.ServiceByName(name)
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		what := s.Image
		if what == "" {
			what = s.Command[0]
		}
		if got := s.Host + " " + s.IP.String() + " " + what; got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	order, _ := c.ServiceByName("order-service")
	if order.Env["DATABASE_URL"] != "postgresql://postgres:postgres@mongodb-order:5432/order_db" || order.Env["USER_SERVICE_URL"] != "http://user-service:8003" {
		t.Errorf("order-service's env (its env_file, host_2/order-service/.env, and environment): %v", order.Env)
	}
}

func TestLoadProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, field, in string
	}{
		{"missing file", filepath.Join(dir, "compose.yaml"), "-f", ""},
		{"schema violation", write("bad.yaml", "services:\n  web: {image: web, ports: {a: b}}\n"), "(compose file)", "ports"},
		{"unsupported key", write("build.yaml", "x-weft: {overlay: {vni: 9}}\nservices:\n  web: {image: web, build: .}\n"), "services.web.build", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(context.Background(), tt.path)
			var ps spec.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("got %v, want Problems", err)
			}
			if !ps.Has(tt.field) {
				t.Fatalf("no problem named %s:\n%v", tt.field, ps)
			}
			if tt.in != "" && !strings.Contains(ps.Error(), tt.in) {
				t.Errorf("%q does not name %s", ps.Error(), tt.in)
			}
			if tt.field != "-f" && !strings.Contains(ps.Error(), tt.path) {
				t.Errorf("%q does not name the file", ps.Error())
			}
		})
	}
}
