package agent

import (
	"fmt"

	"github.com/weft-dev/weft/internal/gateway"
	"github.com/weft-dev/weft/internal/image"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/overlay"
	"github.com/weft-dev/weft/internal/runtime"
	"github.com/weft-dev/weft/internal/spec"
)

// runtimeConfig is everything the runtime needs to run one container.
// img is the service's image (zero for a host binary): its entrypoint, cmd,
// env, workdir and user are the defaults under the file's fields.
func (a *Agent) runtimeConfig(c *spec.Cluster, hc overlay.HostConfig, svc spec.Service, as model.Assignment, img image.Image) runtime.Config {
	cmd := append([]string(nil), svc.Command...)
	if len(cmd) > 0 && cmd[0] == "weft" {
		cmd[0] = a.cfg.Exe
	}
	env := map[string]string{
		"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME": "/root",
	}
	workdir, user := svc.Workdir, svc.User
	if svc.Image != "" {
		cmd = img.Argv(svc.Entrypoint, svc.Command)
		delete(env, "HOME") // the init takes it from the image's /etc/passwd
		for k, v := range img.Env() {
			env[k] = v
		}
		workdir, user = image.Or(svc.Workdir, img.Config.WorkingDir), image.Or(svc.User, img.Config.User)
	}
	for k, v := range map[string]string{
		"WEFT_CLUSTER":   c.Name,
		"WEFT_SERVICE":   svc.Name,
		"WEFT_CONTAINER": as.Container,
		"WEFT_HOST":      as.Host,
		"WEFT_IP":        as.IP.String(),
		"WEFT_DOMAIN":    c.Domain,
	} {
		env[k] = v
	}
	if isGateway(svc) {
		if cfg, err := gatewayConfig(c, svc); err == nil {
			env[gateway.ConfigEnv] = cfg
		} else {
			a.log.Warn("configuring gateway", "service", svc.Name, "err", err)
		}
	}
	for k, v := range svc.Env {
		env[k] = v
	}
	var vols []runtime.Mount
	for _, v := range svc.Volumes {
		vols = append(vols, runtime.Mount{
			HostPath: naming.VolumeDir(a.cfg.StateRoot, c.Name, as.Container, v.Name),
			Path:     v.Path,
		})
	}
	return runtime.Config{
		Cluster:    c.Name,
		Host:       a.self.Name,
		Container:  as.Container,
		Service:    svc.Name,
		Image:      img.RootFS,
		Command:    cmd,
		Env:        env,
		Workdir:    workdir,
		User:       user,
		Netns:      naming.ContainerNetns(c.Name, a.self.Name, as.Container),
		Hostname:   as.Container,
		ResolvConf: fmt.Sprintf("nameserver %s\nsearch %s\noptions ndots:1 timeout:1 attempts:3\n", hc.BridgeAddr.Addr(), c.Domain),
		Hosts:      fmt.Sprintf("127.0.0.1\tlocalhost\n%s\t%s.%s %s %s\n", as.IP, as.Container, c.Domain, as.Container, svc.Name),
		Volumes:    vols,
		Restart:    svc.Restart,
		Resources:  runtime.ResourcesOf(svc),
		UserNS:     userNSOf(c, svc),
	}
}

// userNSOf is the user namespace of the service's containers: the
// cluster's id map unless the service turned it off (`userns: false`;
// spec.Service.UserNSOn).
func userNSOf(c *spec.Cluster, svc spec.Service) runtime.IDMap {
	if !svc.UserNSOn() {
		return runtime.IDMap{}
	}
	return runtime.ClusterIDMap(c.Name)
}
