package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateReadsComposeFiles: `weft validate -f` takes a compose file
// (by name, and by content under another name) as well as a weft.yaml, and
// refuses a bad compose file with the exit status of a bad weft.yaml.
func TestValidateReadsComposeFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const xweft = "x-weft:\n  network: {cidr: 192.168.0.0/16, subnets: {a: 192.168.1.0/24}}\n  overlay: {vni: 9}\n  hosts: [{name: host1, subnet: a}]\n"
	tests := []struct {
		name, file string
		code       int
		out        string
	}{
		{"example compose file", "../../examples/compose/compose.yaml", 0, "cluster cmp-hello is valid: 2 hosts, 3 services, 4 containers"},
		{"compose content under another name", write("stack.yaml", "name: cmp-stack\n"+xweft+"services:\n  web: {image: web:v1}\n"), 0, "cluster cmp-stack is valid"},
		{"weft.yaml", "../../examples/hello/weft.yaml", 0, "cluster hello is valid"},
		{"refused compose key", write("compose.yaml", "name: cmp-bad\n"+xweft+"services:\n  web: {image: web:v1, privileged: true}\n"), exitBadInput, "services.web.privileged: not supported by weft"},
		{"compose-go refuses it", write("docker-compose.yml", "services:\n  web: {image: web:v1, ports: {a: 1}}\n"), exitBadInput, "(compose file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb strings.Builder
			g := &globals{file: tt.file, stdout: &out, stderr: &errb}
			err := newValidateCmd(g).RunE(nil, nil)
			code := 0
			if ee, ok := err.(*exitError); ok {
				code = ee.code
			} else if err != nil {
				t.Fatalf("validate: %v", err)
			}
			if code != tt.code || !strings.Contains(out.String()+errb.String(), tt.out) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.code, tt.out, out.String(), errb.String())
			}
		})
	}
}

func TestDefaultClusterFile(t *testing.T) {
	dir := t.TempDir()
	if got := defaultClusterFile(dir); got != filepath.Join(dir, "weft.yaml") {
		t.Errorf("empty directory: %s, want weft.yaml (its error names it)", got)
	}
	compose := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(compose, []byte("services: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := defaultClusterFile(dir); got != compose {
		t.Errorf("only a compose file: %s, want %s", got, compose)
	}
	if err := os.WriteFile(filepath.Join(dir, "weft.yaml"), []byte("version: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := defaultClusterFile(dir); got != filepath.Join(dir, "weft.yaml") {
		t.Errorf("weft.yaml beside a compose file: %s, want weft.yaml", got)
	}
}

// TestUpRefusesAnotherClusterName: `weft up --cluster X` with a file that
// names another cluster stops before anything is built, with an error that
// names both and the fix (up builds the cluster its file names).
func TestUpRefusesAnotherClusterName(t *testing.T) {
	var out, errb strings.Builder
	g := &globals{file: "../../examples/hello/weft.yaml", cluster: "other", stdout: &out, stderr: &errb}
	err := newUpCmd(g).RunE(nil, nil)
	ee, ok := err.(*exitError)
	if !ok || ee.code != exitBadInput {
		t.Fatalf("up --cluster other: %v, want exit status %d", err, exitBadInput)
	}
	for _, want := range []string{"--cluster other", "hello", "change name: in the file, or drop --cluster"} {
		if !strings.Contains(ee.Error(), want) {
			t.Errorf("error %q lacks %q", ee.Error(), want)
		}
	}
}
