package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestComposeExample brings up examples/compose/compose.yaml, a docker
// compose file, under a unique name and a free loopback port, and gets an
// answer from service api through the published 127.0.0.1 port, from its
// pinned address (networks.back.ipv4_address). The compose healthcheck
// (busybox wget) gates depends_on: api starts once store is healthy.
func TestComposeExample(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoDir, "examples/compose/compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	name, port := uniqueName("cmp-"), freePort(t)
	body := strings.NewReplacer(
		"name: cmp-hello", "name: "+name,
		"docker-archive:../../bin/hello-image.tar", "docker-archive:"+helloImage(t),
		"127.0.0.1:18081:8080", fmt.Sprintf("127.0.0.1:%d:8080", port),
	).Replace(string(src))
	if !strings.Contains(body, name) || !strings.Contains(body, fmt.Sprint(port)) {
		t.Fatal("the example's name or port changed: update this test's replacements")
	}
	file := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c := cluster{name: name, file: file}
	upCluster(t, c)

	st := c.status(t)
	if len(st.Containers) != 4 {
		t.Fatalf("want 4 containers (api, store, web x2), got %+v", st.Containers)
	}

	client := &http.Client{Timeout: 3 * time.Second}
	var reply struct {
		Service string   `json:"service"`
		Addrs   []string `json:"addrs"`
	}
	eventually(t, 30*time.Second, "api to answer on the published port", func() error {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(&reply)
	})
	if reply.Service != "api" || !slices.Contains(reply.Addrs, "10.20.0.5") {
		t.Errorf("got %+v, want service api on its pinned 10.20.0.5", reply)
	}
}
