package compose

import (
	"fmt"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/weft-dev/weft/internal/spec"
)

// health maps a compose healthcheck to an exec check: CMD runs its argv,
// CMD-SHELL runs its string with /bin/sh -c, NONE (or disable: true) means
// no check. Durations left out take weft's defaults (1s), not Docker's 30s.
func (t *translation) health(path string, h *types.HealthCheckConfig) *spec.Health {
	if h == nil || h.Disable {
		return nil
	}
	field := path + ".healthcheck"
	t.from(path+".health", field)
	t.from(path+".health.exec", field+".test")
	if len(h.Test) == 0 {
		// Only durations: Docker would use the image's HEALTHCHECK; weft does not read it.
		t.add(field+".test", "", "missing; weft does not use the image's HEALTHCHECK", `write e.g. test: ["CMD", "wget", "-q", "-O-", "http://localhost:8080/health"]`)
		return nil
	}
	out := &spec.Health{}
	switch h.Test[0] {
	case "NONE":
		return nil
	case "CMD":
		out.Exec = append([]string(nil), h.Test[1:]...)
	case "CMD-SHELL":
		if len(h.Test) != 2 {
			t.add(field+".test", "", "CMD-SHELL takes one string", `write test: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]`)
			return nil
		}
		out.Exec = []string{"/bin/sh", "-c", h.Test[1]}
	default:
		t.add(field+".test", h.Test[0], "the test must start with CMD, CMD-SHELL or NONE", `write test: ["CMD", "prog", "arg"] or test: "shell command"`)
		return nil
	}
	if len(out.Exec) == 0 {
		t.add(field+".test", h.Test[0], "has no command after "+h.Test[0], "add the command to run")
		return nil
	}
	out.Interval.Duration = duration(h.Interval)
	out.Timeout.Duration = duration(h.Timeout)
	out.StartPeriod.Duration = duration(h.StartPeriod)
	if h.Retries != nil {
		if *h.Retries == 0 {
			t.add(field+".retries", "0", "must be at least 1", fmt.Sprintf("leave it out (%d) or write a positive count", spec.DefaultHealthRetries))
		}
		out.Retries = int(min(*h.Retries, 1<<20))
	}
	return out
}

func duration(d *types.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}
