package integration

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSeed000 brings up examples/seed000: seed 000's three docker compose
// files (host_1's gateway, product and inventory; host_2's gateway, order
// and user; host_3's databases), included by one compose.yaml into one
// cluster, under a unique name and free loopback ports. The services run
// from the shop's image built by scripts/build-images.sh, the databases
// and gateways as host binaries (provider weft). It checks the seed's
// pinned addresses and hosts, then walks the shop through the gateways'
// VIP published on 127.0.0.1, and asks each gateway and service on its own
// published port (the seed's ports: entries) for its health.
func TestSeed000(t *testing.T) {
	image := buildShopImages(t)
	name := uniqueName("s0-")
	vip := freePort(t)
	// The seed's published ports (gateways: 80, mapped to 8081 and 8082 in
	// the example) and free ones in their place.
	published := map[string]int{"8081:80": 0, "8082:80": 0, "8000:8000": 0, "8001:8001": 0, "8002:8002": 0, "8003:8003": 0}
	pairs := []string{
		"name: seed000", "name: " + name,
		"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", vip),
		"docker-archive:../../bin/images/shop.tar", "docker-archive:" + image,
		"../../bin/shop", shopBin,
	}
	for mapping := range published {
		published[mapping] = freePort(t)
		_, target, _ := strings.Cut(mapping, ":")
		pairs = append(pairs, `"`+mapping+`"`, fmt.Sprintf(`"%d:%s"`, published[mapping], target))
	}
	dir := t.TempDir()
	copyExample(t, filepath.Join(repoDir, "examples/seed000"), dir, pairs)
	c := cluster{name: name, file: filepath.Join(dir, "compose.yaml")}
	upCluster(t, c)

	// The seed's hosts and pinned addresses (its /etc/hosts, update-hostfile.sh).
	want := map[string]string{
		"nginx-gateway-master": "host1 10.10.0.100", "product-service": "host1 10.10.0.5", "inventory-service": "host1 10.10.0.6",
		"nginx-gateway-backup": "host2 10.10.0.101", "order-service": "host2 10.10.0.7", "user-service": "host2 10.10.0.8",
		"postgres-user": "host3 10.10.0.9", "mongodb-product": "host3 10.10.0.10", "mongodb-order": "host3 10.10.0.11", "postgres-inventory": "host3 10.10.0.12",
	}
	st := c.status(t)
	if len(st.Containers) != len(want) {
		t.Errorf("%d containers, want one per service of the seed (%d): %+v", len(st.Containers), len(want), st.Containers)
	}
	for _, ct := range st.Containers {
		if got := ct.Host + " " + ct.IP.String(); got != want[ct.Service] {
			t.Errorf("%s: on %s, want %s (the seed's)", ct.Container, got, want[ct.Service])
		}
	}

	api := &shopAPI{t: t, base: fmt.Sprintf("http://127.0.0.1:%d/api/v1", vip), http: &http.Client{Timeout: 20 * time.Second}}
	admin := adminLogin(t, api, c.file)
	t.Run("names, not addresses", func(t *testing.T) { checkNamesNotAddresses(t, c.file) })
	t.Run("the walk", func(t *testing.T) { shopWalk(t, api, admin) })
	t.Run("published ports", func(t *testing.T) {
		for mapping, service := range map[string]string{"8081:80": "api-gateway", "8082:80": "api-gateway",
			"8000:8000": "product-service", "8001:8001": "order-service", "8002:8002": "inventory-service", "8003:8003": "user-service"} {
			resp, err := api.http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", published[mapping]))
			if err != nil {
				t.Errorf("the seed's %q: %v", mapping, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"`+service+`"`) {
				t.Errorf("the seed's %q: GET /health: %d %s, want 200 from %s", mapping, resp.StatusCode, body, service)
			}
		}
	})
}

// copyExample copies the example's directory tree to dir, replacing in
// every file each old string of pairs (old, new, old, new, ...) by its new
// one; each old string must occur somewhere, so that a change of the
// example shows up here rather than as a test of the wrong thing.
func copyExample(t *testing.T, src, dir string, pairs []string) {
	t.Helper()
	r := strings.NewReplacer(pairs...)
	found := map[string]bool{}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i := 0; i < len(pairs); i += 2 {
			if strings.Contains(string(body), pairs[i]) {
				found[pairs[i]] = true
			}
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, []byte(r.Replace(string(body))), 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
	for i := 0; i < len(pairs); i += 2 {
		if !found[pairs[i]] {
			t.Fatalf("%q is no longer in %s: update this test's replacements", pairs[i], src)
		}
	}
}
