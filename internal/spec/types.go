// Package spec defines the cluster file (weft.yaml): its types, defaults and
// validation. It is pure: the only I/O is reading the file.
package spec

import (
	"net/netip"
	"time"
)

// Cluster is one parsed, defaulted cluster file.
type Cluster struct {
	Version  int       `yaml:"version" json:"version"`
	Name     string    `yaml:"name" json:"name"`
	Provider string    `yaml:"provider" json:"provider"` // "lab" (default) or "ssh"
	SSH      SSH       `yaml:"ssh" json:"ssh"`           // how provider ssh reaches the servers (ssh.go)
	Domain   string    `yaml:"domain" json:"domain"`     // DNS domain of the cluster, default "weft"
	Network  Network   `yaml:"network" json:"network"`
	Overlay  Overlay   `yaml:"overlay" json:"overlay"`
	Hosts    []Host    `yaml:"hosts" json:"hosts"`
	Services []Service `yaml:"services" json:"services"` // a mapping name -> service in YAML, kept in file order

	Routes  []Route         `yaml:"routes" json:"routes,omitempty"`   // the gateway's HTTP routes
	Gateway GatewaySettings `yaml:"gateway" json:"gateway"`           // limits and ports of the gateway
	Publish []Publish       `yaml:"publish" json:"publish,omitempty"` // loopback ports of this machine forwarded to gateway services
	VIPs    []VIP           `yaml:"vips" json:"vips,omitempty"`       // floating addresses of the underlay (vip.go)

	// RescheduleAfter is the services' default for how long a host must be
	// down before its movable containers move to live hosts (default 5s).
	RescheduleAfter Duration `yaml:"reschedule_after" json:"reschedule_after"`

	// Firewall says whether every host runs weft's nftables firewall
	// (internal/firewall); default true. Read it with FirewallOn.
	Firewall *bool `yaml:"firewall" json:"firewall,omitempty"`

	// Dir is the directory of the file; relative paths in commands resolve against it.
	Dir string `yaml:"-" json:"dir"`
}

// Network is the underlay: one private network cut into named subnets.
type Network struct {
	CIDR    netip.Prefix `yaml:"cidr" json:"cidr"`
	MTU     int          `yaml:"mtu" json:"mtu"`         // underlay MTU, default 1500
	Subnets []Subnet     `yaml:"subnets" json:"subnets"` // a mapping name -> cidr in YAML, kept in file order
}

// Subnet is one named subnet of the underlay.
type Subnet struct {
	Name string       `json:"name"`
	CIDR netip.Prefix `json:"cidr"`
}

// Overlay is the VXLAN network the containers live on.
type Overlay struct {
	VNI    int          `yaml:"vni" json:"vni"`
	Port   int          `yaml:"port" json:"port"`     // default 4789
	CIDR   netip.Prefix `yaml:"cidr" json:"cidr"`     // default 10.10.0.0/16
	MTU    int          `yaml:"mtu" json:"mtu"`       // default Network.MTU - 50
	Bridge string       `yaml:"bridge" json:"bridge"` // default "br-vxlan"
}

// Host is one machine of the cluster.
type Host struct {
	Name    string     `yaml:"name" json:"name"`
	Subnet  string     `yaml:"subnet" json:"subnet"`
	Address netip.Addr `yaml:"address" json:"address"` // underlay address; default: the subnet's .10, .11, ... in file order
	Roles   []string   `yaml:"roles" json:"roles"`     // "manager" carries an etcd member; default: the first three hosts
	// InstallRoot is where provider ssh puts weft on this server; default
	// ssh.install_root.
	InstallRoot string `yaml:"install_root" json:"install_root,omitempty"`
}

// Service is one workload; it runs as Replicas containers.
type Service struct {
	Name string `json:"name"`
	// Image, when set, is the container's root filesystem (image.go for
	// its forms); its entrypoint, cmd, env, workdir and user are the
	// defaults of Entrypoint, Command, Env, Workdir and User. Without it
	// the service runs a host binary (Command) in a root made of the
	// host's system directories.
	Image      string            `yaml:"image" json:"image,omitempty"`
	Entrypoint []string          `yaml:"entrypoint" json:"entrypoint,omitempty"` // image services only: replaces the image's entrypoint (and drops its cmd unless command is given)
	Command    []string          `yaml:"command" json:"command"`
	Env        map[string]string `yaml:"env" json:"env,omitempty"`
	Workdir    string            `yaml:"workdir" json:"workdir,omitempty"`
	User       string            `yaml:"user" json:"user,omitempty"`
	Host       string            `yaml:"host" json:"host,omitempty"`
	Hosts      []string          `yaml:"hosts" json:"hosts,omitempty"`
	IP         netip.Addr        `yaml:"ip" json:"ip,omitempty"`
	Port       int               `yaml:"port" json:"port,omitempty"` // the port the service serves on (used by health and routes)
	Replicas   int               `yaml:"replicas" json:"replicas"`   // default 1 when the key is absent (Parse sets it); 0 means scaled to zero
	DependsOn  []string          `yaml:"depends_on" json:"depends_on,omitempty"`
	Health     *Health           `yaml:"health" json:"health,omitempty"`
	Restart    string            `yaml:"restart" json:"restart"` // always (default) | on-failure | never
	Volumes    []Volume          `yaml:"volumes" json:"volumes,omitempty"`
	// Artifacts are files of this machine that provider ssh puts on every
	// host that may run the service (artifact.go).
	Artifacts []Artifact `yaml:"artifacts" json:"artifacts,omitempty"`

	// Reschedule says whether the service's containers move to a live host
	// when theirs is down; default true, false when the service has volumes.
	// Set by ApplyDefaults; read it with Reschedules.
	Reschedule *bool `yaml:"reschedule" json:"reschedule,omitempty"`
	// RescheduleAfter is how long the host must be down before they move;
	// default the cluster's reschedule_after.
	RescheduleAfter Duration   `yaml:"reschedule_after" json:"reschedule_after"`
	Resources       *Resources `yaml:"resources" json:"resources,omitempty"` // limits; see resources.go
	// UserNS says whether the containers run in a user namespace (root in
	// them an unprivileged host uid); default true, with an image too.
	// Read it with UserNSOn.
	UserNS *bool `yaml:"userns" json:"userns,omitempty"`

	// StopGrace is how long a drained instance has between SIGTERM and
	// SIGKILL (default 10s); Update is how a change of the definition rolls
	// out (update.go).
	StopGrace Duration `yaml:"stop_grace" json:"stop_grace"`
	Update    *Update  `yaml:"update" json:"update,omitempty"`
}

// Health is how weft decides a container is healthy. Exactly one of HTTP, TCP, Exec.
type Health struct {
	HTTP        string   `yaml:"http" json:"http,omitempty"` // path, e.g. /health; port is Port or the service's port
	TCP         int      `yaml:"tcp" json:"tcp,omitempty"`   // port
	Exec        []string `yaml:"exec" json:"exec,omitempty"` // argv run inside the container; exit 0 is healthy
	Port        int      `yaml:"port" json:"port,omitempty"`
	Interval    Duration `yaml:"interval" json:"interval"`         // default 1s
	Timeout     Duration `yaml:"timeout" json:"timeout"`           // default 1s
	Retries     int      `yaml:"retries" json:"retries"`           // consecutive failures before unhealthy, default 3
	StartPeriod Duration `yaml:"start_period" json:"start_period"` // failures during it do not count, default 0
}

// Volume is a host directory that outlives the container, mounted at Path inside it.
type Volume struct {
	Name string `yaml:"name" json:"name"`
	Path string `yaml:"path" json:"path"`
}

// Route sends HTTP requests whose path starts with Prefix to Service, or to
// weighted Backends; a request with Match's header goes to Match's service.
type Route struct {
	Prefix   string         `yaml:"prefix" json:"prefix"`
	Service  string         `yaml:"service" json:"service,omitempty"`
	Backends []RouteBackend `yaml:"backends" json:"backends,omitempty"`
	Match    *RouteMatch    `yaml:"match" json:"match,omitempty"`
	Timeout  Duration       `yaml:"timeout" json:"timeout"` // per attempt, default 10s
	Retries  int            `yaml:"retries" json:"retries"` // extra attempts on another instance, default 2 when the key is absent (Parse sets it); 0 means none
}

// RouteBackend is one weighted service of a route.
type RouteBackend struct {
	Service string `yaml:"service" json:"service"`
	Weight  int    `yaml:"weight" json:"weight"` // share: weight / the route's sum of weights, 0..1000
}

// RouteMatch sends the requests whose Header equals Value to Service.
type RouteMatch struct {
	Header  string `yaml:"header" json:"header"`
	Value   string `yaml:"value" json:"value"`
	Service string `yaml:"service" json:"service"`
}

// GatewaySettings are the gateway's limits and ports.
type GatewaySettings struct {
	MaxBodyBytes int64  `yaml:"max_body_bytes" json:"max_body_bytes"` // largest request body accepted, default 1048576
	MetricsPort  int    `yaml:"metrics_port" json:"metrics_port"`     // Prometheus metrics port inside the gateway container, default 9100
	Name         string `yaml:"name" json:"name"`                     // the name the gateway reports on GET /health, default "api-gateway"
	// AccessLogSample is the fraction of requests in the access log: nil
	// (left out) or 1 every request, 0 none; 5xx always when above 0.
	AccessLogSample *float64 `yaml:"access_log_sample" json:"access_log_sample,omitempty"`
}

// Publish forwards a loopback port of this machine to gateway services, the
// only way lab traffic is reachable from the root namespace.
type Publish struct {
	Listen   string   `yaml:"listen" json:"listen"`     // "127.0.0.1:8080" or "[::1]:8080"
	Services []string `yaml:"services" json:"services"` // gateway services to forward to
	Port     int      `yaml:"port" json:"port"`         // their port, default: the services' port
	VIP      string   `yaml:"vip" json:"vip,omitempty"` // or: forward to this VIP's address and port, entering where a VPC client would
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
