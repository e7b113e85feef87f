// Package spec defines the cluster file (weft.yaml): its types, defaults and
// validation. It is pure: the only I/O is reading the file.
//
// The file's schema is the decoder's tables (parse.go and the files of each
// section), which walk the YAML nodes themselves: the types carry json tags
// only, for the store and the agent API, and never go through a YAML
// encoder or decoder.
package spec

import (
	"net/netip"
	"time"
)

// Cluster is one parsed, defaulted cluster file.
type Cluster struct {
	Version  int       `json:"version"`
	Name     string    `json:"name"`
	Provider string    `json:"provider"` // "lab" (default) or "ssh"
	SSH      SSH       `json:"ssh"`      // how provider ssh reaches the servers (ssh.go)
	Domain   string    `json:"domain"`   // DNS domain of the cluster, default "weft"
	Network  Network   `json:"network"`
	Overlay  Overlay   `json:"overlay"`
	Hosts    []Host    `json:"hosts"`
	Services []Service `json:"services"` // a mapping name -> service in YAML, kept in file order

	Routes  []Route         `json:"routes,omitempty"`  // the gateway's HTTP routes
	Gateway GatewaySettings `json:"gateway"`           // limits and ports of the gateway
	Publish []Publish       `json:"publish,omitempty"` // loopback ports of this machine forwarded to gateway services
	VIPs    []VIP           `json:"vips,omitempty"`    // floating addresses of the underlay (vip.go)

	// RescheduleAfter is the services' default for how long a host must be
	// down before its movable containers move to live hosts (default 5s).
	RescheduleAfter Duration `json:"reschedule_after"`

	// Firewall says whether every host runs weft's nftables firewall
	// (internal/firewall); default true. Read it with FirewallOn.
	Firewall *bool `json:"firewall,omitempty"`

	// Dir is the directory of the file; relative paths in commands resolve against it.
	Dir string `json:"dir"`
}

// Network is the underlay: one private network cut into named subnets.
type Network struct {
	CIDR    netip.Prefix `json:"cidr"`
	MTU     int          `json:"mtu"`     // underlay MTU, default 1500
	Subnets []Subnet     `json:"subnets"` // a mapping name -> cidr in YAML, kept in file order
}

// Subnet is one named subnet of the underlay.
type Subnet struct {
	Name string       `json:"name"`
	CIDR netip.Prefix `json:"cidr"`
}

// Overlay is the VXLAN network the containers live on.
type Overlay struct {
	VNI    int          `json:"vni"`
	Port   int          `json:"port"`   // default 4789
	CIDR   netip.Prefix `json:"cidr"`   // default 10.10.0.0/16
	MTU    int          `json:"mtu"`    // default Network.MTU - 50
	Bridge string       `json:"bridge"` // default "br-vxlan"
}

// Host is one machine of the cluster.
type Host struct {
	Name    string     `json:"name"`
	Subnet  string     `json:"subnet"`
	Address netip.Addr `json:"address"` // underlay address; default: the subnet's .10, .11, ... in file order
	Roles   []string   `json:"roles"`   // "manager" carries an etcd member; default: the first three hosts
	// InstallRoot is where provider ssh puts weft on this server; default
	// ssh.install_root.
	InstallRoot string `json:"install_root,omitempty"`
}

// Service is one workload; it runs as Replicas containers.
type Service struct {
	Name string `json:"name"`
	// Image, when set, is the container's root filesystem (image.go for
	// its forms); its entrypoint, cmd, env, workdir and user are the
	// defaults of Entrypoint, Command, Env, Workdir and User. Without it
	// the service runs a host binary (Command) in a root made of the
	// host's system directories.
	Image      string            `json:"image,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"` // image services only: replaces the image's entrypoint (and drops its cmd unless command is given)
	Command    []string          `json:"command"`
	Env        map[string]string `json:"env,omitempty"`
	Workdir    string            `json:"workdir,omitempty"`
	User       string            `json:"user,omitempty"`
	Host       string            `json:"host,omitempty"`
	Hosts      []string          `json:"hosts,omitempty"`
	IP         netip.Addr        `json:"ip,omitempty"`
	Port       int               `json:"port,omitempty"` // the port the service serves on (used by health and routes)
	Replicas   int               `json:"replicas"`       // default 1 when the key is absent (Parse sets it); 0 means scaled to zero
	DependsOn  []string          `json:"depends_on,omitempty"`
	Health     *Health           `json:"health,omitempty"`
	Restart    string            `json:"restart"` // always (default) | on-failure | never
	Volumes    []Volume          `json:"volumes,omitempty"`
	// Artifacts are files of this machine that provider ssh puts on every
	// host that may run the service (artifact.go).
	Artifacts []Artifact `json:"artifacts,omitempty"`

	// Reschedule says whether the service's containers move to a live host
	// when theirs is down; default true, false when the service has volumes.
	// Set by ApplyDefaults; read it with Reschedules.
	Reschedule *bool `json:"reschedule,omitempty"`
	// RescheduleAfter is how long the host must be down before they move;
	// default the cluster's reschedule_after.
	RescheduleAfter Duration   `json:"reschedule_after"`
	Resources       *Resources `json:"resources,omitempty"` // limits; see resources.go
	// UserNS says whether the containers run in a user namespace (root in
	// them an unprivileged host uid); default true, with an image too.
	// Read it with UserNSOn.
	UserNS *bool `json:"userns,omitempty"`

	// StopGrace is how long a drained instance has between SIGTERM and
	// SIGKILL (default 10s); Update is how a change of the definition rolls
	// out (update.go).
	StopGrace Duration `json:"stop_grace"`
	Update    *Update  `json:"update,omitempty"`
}

// Health is how weft decides a container is healthy. Exactly one of HTTP, TCP, Exec.
type Health struct {
	HTTP        string   `json:"http,omitempty"` // path, e.g. /health; port is Port or the service's port
	TCP         int      `json:"tcp,omitempty"`  // port
	Exec        []string `json:"exec,omitempty"` // argv run inside the container; exit 0 is healthy
	Port        int      `json:"port,omitempty"`
	Interval    Duration `json:"interval"`     // default 1s
	Timeout     Duration `json:"timeout"`      // default 1s
	Retries     int      `json:"retries"`      // consecutive failures before unhealthy, default 3
	StartPeriod Duration `json:"start_period"` // failures during it do not count, default 0
}

// Volume is a host directory that outlives the container, mounted at Path inside it.
type Volume struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// Route sends HTTP requests whose path starts with Prefix to Service, or to
// weighted Backends; a request with Match's header goes to Match's service.
type Route struct {
	Prefix   string         `json:"prefix"`
	Service  string         `json:"service,omitempty"`
	Backends []RouteBackend `json:"backends,omitempty"`
	Match    *RouteMatch    `json:"match,omitempty"`
	Timeout  Duration       `json:"timeout"` // per attempt, default 10s
	Retries  int            `json:"retries"` // extra attempts on another instance, default 2 when the key is absent (Parse sets it); 0 means none
}

// RouteBackend is one weighted service of a route.
type RouteBackend struct {
	Service string `json:"service"`
	Weight  int    `json:"weight"` // share: weight / the route's sum of weights, 0..1000
}

// RouteMatch sends the requests whose Header equals Value to Service.
type RouteMatch struct {
	Header  string `json:"header"`
	Value   string `json:"value"`
	Service string `json:"service"`
}

// GatewaySettings are the gateway's limits and ports.
type GatewaySettings struct {
	MaxBodyBytes int64  `json:"max_body_bytes"` // largest request body accepted, default 1048576
	MetricsPort  int    `json:"metrics_port"`   // Prometheus metrics port inside the gateway container, default 9100
	Name         string `json:"name"`           // the name the gateway reports on GET /health, default "api-gateway"
	// AccessLogSample is the fraction of requests in the access log: nil
	// (left out) or 1 every request, 0 none; 5xx always when above 0.
	AccessLogSample *float64 `json:"access_log_sample,omitempty"`
}

// Publish forwards a loopback port of this machine to gateway services, the
// only way lab traffic is reachable from the root namespace.
type Publish struct {
	Listen   string   `json:"listen"`        // "127.0.0.1:8080" or "[::1]:8080"
	Services []string `json:"services"`      // gateway services to forward to
	Port     int      `json:"port"`          // their port, default: the services' port
	VIP      string   `json:"vip,omitempty"` // or: forward to this VIP's address and port, entering where a VPC client would
}

// Duration is a time.Duration written as "500ms", "2s" in the file.
type Duration struct{ time.Duration }

// Restart policies.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// Host roles.
const (
	RoleManager = "manager" // carries an etcd member
	RoleWorker  = "worker"  // never a manager, also when defaults pick managers
)
