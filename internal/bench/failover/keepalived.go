package failover

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/naming"
)

// keepalivedPeer is one of the two keepalived instances of the anchor.
type keepalivedPeer struct {
	host      string
	addr      netip.Addr
	netns     string
	dir       string // config, pid and state files
	stateFile string // written by the notify script: MASTER | BACKUP | FAULT
	proc      *labrun.Proc
	cgroup    string
}

// keepalivedConfig is seed 001's keepalived, VRRP over unicast (clouds have
// no multicast), advert_int 1, and a notify script that moves the VPC route
// instead of an address: the route is the VIP. Both start BACKUP with
// nopreempt, so a restored host does not take the VIP back.
func keepalivedConfig(p keepalivedPeer, peer netip.Addr, notify string) string {
	return fmt.Sprintf(`global_defs {
  router_id %s
  script_user root
  enable_script_security
}
vrrp_instance weft_bench {
  state BACKUP
  nopreempt
  interface %s
  virtual_router_id 51
  priority 100
  advert_int 1
  unicast_src_ip %s
  unicast_peer {
    %s
  }
  notify %s
}
`, p.host, naming.HostUnderlayIface, p.addr, peer, notify)
}

// notifyScript records the state and, on MASTER, points the VIP's route in
// the router at this host, exactly what the seed's script does with
// `aws ec2 replace-route`.
func notifyScript(stateFile, routerNetns string, vip, self netip.Addr) string {
	return fmt.Sprintf(`#!/bin/sh
# $1=INSTANCE $2=name $3=state $4=priority
echo "$3" > %s.tmp && mv %s.tmp %s
if [ "$3" = MASTER ]; then
  exec ip -n %s route replace %s/32 via %s
fi
`, stateFile, stateFile, stateFile, routerNetns, vip, self)
}

// startKeepalived writes the config of both peers and starts them inside
// their host namespaces, in their hosts' cgroups (so a crash freezes them
// too, and weft down would kill them).
func startKeepalived(ctx context.Context, bin, workDir, cluster string, hosts [2]hostInfo, vip netip.Addr) ([2]*keepalivedPeer, error) {
	var peers [2]*keepalivedPeer
	for i, h := range hosts {
		dir := filepath.Join(workDir, "keepalived-"+h.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return peers, fmt.Errorf("making %s: %w", dir, err)
		}
		p := &keepalivedPeer{host: h.name, addr: h.addr, netns: h.netns, dir: dir,
			stateFile: filepath.Join(dir, "state"), cgroup: naming.CgroupRelPath(cluster, h.name, "keepalived")}
		notify := filepath.Join(dir, "notify.sh")
		if err := os.WriteFile(notify, []byte(notifyScript(p.stateFile, naming.RouterNetns(cluster), vip, h.addr)), 0o755); err != nil {
			return peers, fmt.Errorf("writing %s: %w", notify, err)
		}
		conf := filepath.Join(dir, "keepalived.conf")
		if err := os.WriteFile(conf, []byte(keepalivedConfig(*p, hosts[1-i].addr, notify)), 0o644); err != nil {
			return peers, fmt.Errorf("writing %s: %w", conf, err)
		}
		argv, err := cgroup.WrapArgv(p.cgroup, []string{bin, "--dont-fork", "--log-console", "--log-detail", "--vrrp",
			"--use-file", conf, "--pid", filepath.Join(dir, "keepalived.pid"), "--vrrp_pid", filepath.Join(dir, "vrrp.pid")})
		if err != nil {
			return peers, err
		}
		if p.proc, err = labrun.Start(ctx, h.netns, argv...); err != nil {
			return peers, fmt.Errorf("starting keepalived on %s: %w", h.name, err)
		}
		peers[i] = p
	}
	return peers, nil
}

func (p *keepalivedPeer) state() string {
	b, err := os.ReadFile(p.stateFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// stop ends keepalived (thawing it first if frozen is the caller's job)
// and removes its cgroup.
func (p *keepalivedPeer) stop() error {
	if p == nil || p.proc == nil {
		return nil
	}
	p.proc.Stop()
	if err := cgroup.KillAll(p.cgroup, 3*time.Second); err != nil {
		return fmt.Errorf("stopping keepalived on %s: %w", p.host, err)
	}
	_ = cgroup.Remove(p.cgroup)
	_ = cgroup.RemoveFrom(cgroup.Freezer, p.cgroup)
	return nil
}

// keepalivedBinary finds keepalived (apt package keepalived).
func keepalivedBinary() (string, error) {
	for _, p := range []string{"/usr/sbin/keepalived", "/sbin/keepalived"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("keepalived"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("keepalived is not installed: run scripts/install-deps.sh (apt-get install keepalived), or pass --keepalived=false")
}
