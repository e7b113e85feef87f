// Package compose turns a docker compose file into weft's spec.Cluster, so
// that everything after parsing is the same as for a weft.yaml. It reads
// the file with the compose-spec's own library (compose-go, load.go) and
// translates its model with a pure function (Translate). Placement, hosts
// and the overlay come from the file's x-weft extension (xweft.go).
// Anything weft cannot honour is reported by its path (unsupported.go).
package compose

import (
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/weft-dev/weft/internal/spec"
)

// Translate turns a loaded compose project into a defaulted, validated
// cluster. On any problem it returns (nil, spec.Problems) with every
// problem, each named by its path in the compose file.
func Translate(p *types.Project) (*spec.Cluster, error) {
	t := &translation{renames: map[string]string{}}
	c := t.cluster(p)
	t.problems = append(t.problems, unsupportedInProject(p)...)
	// compose-go keeps services in a map: file order is lost.
	for _, name := range sortedKeys(p.Services) {
		svc := p.Services[name]
		t.problems = append(t.problems, unsupportedInService(svc)...)
		c.Services = append(c.Services, t.service(c, svc))
	}
	if len(t.problems) > 0 {
		return nil, t.problems
	}
	done, err := spec.Finish(c)
	if err != nil {
		if ps, ok := err.(spec.Problems); ok {
			for i := range ps {
				ps[i].Field = t.rename(ps[i].Field)
			}
			return nil, ps
		}
		return nil, err
	}
	return done, nil
}

// translation collects problems and, for the checks spec.Validate makes on
// the result, where each weft field came from in the compose file.
type translation struct {
	problems spec.Problems
	renames  map[string]string // weft field path -> compose field path
}

func (t *translation) add(field, value, message, fix string) {
	t.problems = append(t.problems, spec.Problem{Field: field, Value: value, Message: message, Fix: fix})
}

// from records that the weft field came from the compose field.
func (t *translation) from(weft, compose string) { t.renames[weft] = compose }

// rename maps a weft field path (services.web.health.interval) to the
// compose path it was made from (services.web.healthcheck.interval), by its
// longest recorded prefix.
func (t *translation) rename(field string) string {
	for f := field; f != ""; f = parentField(f) {
		if to, ok := t.renames[f]; ok {
			return to + field[len(f):]
		}
	}
	return field
}

func parentField(field string) string {
	i := strings.LastIndexAny(field, ".[")
	if i < 0 {
		return ""
	}
	return field[:i]
}

// service translates one compose service.
func (t *translation) service(c *spec.Cluster, svc types.ServiceConfig) spec.Service {
	path := "services." + svc.Name
	s := spec.Service{
		Name:       svc.Name,
		Image:      svc.Image,
		Entrypoint: slices.Clone(svc.Entrypoint),
		Command:    slices.Clone(svc.Command),
		Workdir:    svc.WorkingDir,
		User:       svc.User,
		Replicas:   svc.GetScale(),
	}
	t.from(path+".replicas", path+".deploy.replicas")
	t.from(path+".env", path+".environment")
	t.from(path+".workdir", path+".working_dir")
	if len(svc.Environment) > 0 {
		s.Env = map[string]string{}
		for k, v := range svc.Environment {
			if v == nil {
				t.add(path+".environment."+k, "", "has no value and no variable of that name is set where weft runs",
					"write `"+k+"=value`, or set "+k+" in the environment or in .env beside the compose file")
				continue
			}
			s.Env[k] = *v
		}
	}
	t.provider(path, svc)
	s.Restart = t.restart(path, svc.Restart)
	s.Resources = t.resources(path, svc.Deploy)
	s.Update = t.update(path, svc)
	s.StopGrace = t.stopGrace(path, svc.StopGracePeriod)
	s.Health = t.health(path, svc.HealthCheck)
	s.DependsOn = t.dependsOn(path, svc.DependsOn)
	s.Volumes = t.volumes(path, svc.Volumes)
	s.IP = t.pinnedIP(path, svc.Networks)
	s.Port = t.servicePort(svc)
	c.Publish = append(c.Publish, t.ports(c, path, svc)...)
	s.Host, s.Hosts = t.placement(path, svc.Extensions)
	return s
}

// restart maps compose's restart policy; left out, weft's default (always)
// applies, as it does for deploy.restart_policy in a Swarm stack.
func (t *translation) restart(path, r string) string {
	t.from(path+".restart", path+".restart")
	switch {
	case r == "":
		return ""
	case r == types.RestartPolicyAlways || r == types.RestartPolicyUnlessStopped:
		return spec.RestartAlways
	case r == types.RestartPolicyNo:
		return spec.RestartNever
	case r == types.RestartPolicyOnFailure:
		return spec.RestartOnFailure
	case strings.HasPrefix(r, types.RestartPolicyOnFailure+":"):
		t.add(path+".restart", r, "weft does not limit the number of restarts",
			"write `restart: on-failure` without the count")
		return spec.RestartOnFailure
	}
	t.add(path+".restart", r, "unknown restart policy", "use no, always, on-failure or unless-stopped")
	return ""
}

// servicePort is the port the service serves on: the first container port
// it publishes, else the first it exposes.
func (t *translation) servicePort(svc types.ServiceConfig) int {
	for _, p := range svc.Ports {
		if p.Target > 0 {
			return int(p.Target)
		}
	}
	for _, e := range svc.Expose {
		var port int
		if _, err := fmt.Sscanf(e, "%d", &port); err == nil && port > 0 && fmt.Sprint(port) == e {
			return port
		}
	}
	return 0
}
