package compose

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"gopkg.in/yaml.v3"

	"github.com/weft-dev/weft/internal/spec"
)

// defaultNames are the file names docker compose looks for, in its order.
var defaultNames = []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}

// DefaultFile is the compose file docker compose would read in dir when
// given no -f: the first of compose.yaml, compose.yml, docker-compose.yaml,
// docker-compose.yml that exists.
func DefaultFile(dir string) (string, bool) {
	for _, name := range defaultNames {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}

// IsCompose says whether the file at path is a compose file rather than a
// weft.yaml: by its name (compose.yaml, compose.yml, docker-compose.yaml,
// docker-compose.yml), else by its content: a top-level services: without
// weft's own top-level keys (version: 1, provider:, hosts:). A file that
// cannot be read is not a compose file: spec.Load reports why.
func IsCompose(path string, data []byte) bool {
	if slices.Contains(defaultNames, filepath.Base(path)) {
		return true
	}
	var top map[string]any
	if yaml.Unmarshal(data, &top) != nil {
		return false
	}
	if _, ok := top["services"]; !ok {
		return false
	}
	if v, ok := top["version"]; ok && fmt.Sprint(v) == "1" {
		return false
	}
	_, provider := top["provider"]
	_, hosts := top["hosts"]
	return !provider && !hosts
}

// Load reads the compose file at path with compose-go (interpolating
// ${VARS} from the environment and the .env beside it, merging env_file
// into environment, resolving paths against its directory) and translates
// it. Every problem comes back as spec.Problems naming the file.
func Load(ctx context.Context, path string) (*spec.Cluster, error) {
	data, err := spec.ReadCapped(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, spec.Problems{{Field: "-f", Value: path, Message: "the compose file does not exist", Fix: "pass an existing file with -f FILE"}}
	case err != nil:
		return nil, spec.Problems{{Field: "-f", Value: path, Message: fmt.Sprintf("cannot read the compose file: %v", err), Fix: "check the file's permissions, or pass another file with -f FILE"}}
	}
	if p := spec.CheckSize(data); p != nil {
		p.File = path
		return nil, spec.Problems{*p}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving the directory of %s: %w", path, err)
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithOsEnv, cli.WithDotEnv)
	if err != nil {
		return nil, fileProblem(path, err)
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		return nil, fileProblem(path, err)
	}
	c, err := Translate(p)
	var ps spec.Problems
	if errors.As(err, &ps) {
		for i := range ps {
			ps[i].File = path
		}
		top := parseSource(path, data)
		locate(append([]*source{top}, included(path, top)...), ps)
		return nil, ps
	}
	return c, err
}

// fileProblem is a problem compose-go found (a schema violation, a missing
// env_file, a bad ${VAR}): its message names the field.
func fileProblem(path string, err error) spec.Problems {
	msg := strings.TrimSpace(err.Error())
	return spec.Problems{{File: path, Field: "(compose file)", Message: msg,
		Fix: "correct the compose file: compose-go, the library of docker compose, refused it"}}
}
