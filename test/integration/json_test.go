package integration

import (
	"encoding/json"
	"os/exec"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func execCmd(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
