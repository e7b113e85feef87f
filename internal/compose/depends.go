package compose

import (
	"github.com/compose-spec/compose-go/v2/types"
)

// dependsOn maps depends_on. weft starts a container once every service it
// depends on has a ready container: healthy when the dependency has a
// health check, running when it has none. So service_healthy is weft's
// meaning; service_started is the same for a dependency without a
// healthcheck and waits for health when it has one (stricter, never
// earlier). service_completed_successfully has no weft counterpart.
func (t *translation) dependsOn(path string, deps types.DependsOnConfig) []string {
	var out []string
	for _, name := range sortedKeys(deps) {
		d := deps[name]
		field := path + ".depends_on." + name
		switch d.Condition {
		case "", types.ServiceConditionStarted, types.ServiceConditionHealthy:
		case types.ServiceConditionCompletedSuccessfully:
			t.add(field+".condition", d.Condition, "not supported by weft: services are long-running and a finished container is restarted",
				"run the one-off step before `weft up`, or use service_started / service_healthy")
			continue
		default:
			t.add(field+".condition", d.Condition, "unknown condition", "use service_started or service_healthy")
			continue
		}
		if !d.Required {
			t.add(field+".required", "false", "not supported by weft: a dependency always has to be in the cluster",
				"remove required: false, or remove the dependency")
		}
		if d.Restart {
			t.add(field+".restart", "true", "not supported by weft: a container is not restarted when its dependency is",
				"remove restart: true")
		}
		out = append(out, name)
	}
	t.from(path+".depends_on", path+".depends_on")
	return out
}
