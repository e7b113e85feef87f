// Package runtime owns every workload process of weft: it starts containers
// (processes in their own network, mount, PID, UTS, IPC and cgroup
// namespaces and, unless turned off, a user namespace (userns.go), in a
// private root, with a minimal capability set,
// no_new_privs, a seccomp filter and cgroup limits; see docs/security.md),
// restarts them per their policy, adopts them after an agent restart, stops
// them, and runs commands inside them (ExecCommand).
//
// A container's first process is `<weft> container-init`, pid 1 of its PID
// namespace. It builds the container's private root and pivots into it
// (rootfs.go), then runs the user's command as its child (dropped to the
// configured user and confined, caps.go and seccomp.go; its output goes
// through a pipe into the container's rotated log) and supervises it: it
// restarts it per the restart policy with backoff, forwards signals to it,
// reaps orphans, and records the workload's host pid, start time, restart
// count and last exit code in workload.json in the container's state
// directory on every transition. The container's pid (in status, for
// `weft exec` and health probes) is the workload's.
//
// Why the restart loop lives in container-init and not in the agent: a
// container must be restarted when it crashes while its agent is dead or
// restarting. The init is already there for every container, is the
// workload's parent (so it learns the real exit status, even after the
// agent changed), and dies only with the container: it needs no process of
// its own, no socket and no protocol. The agent keeps what needs the
// cluster: deciding which containers run, health checks, reporting to the
// store. Its Supervise follows the init's workload record (inotify on the
// state directory, the init's pidfd) and turns it into Events, and restarts
// the init itself only when the init ended without being told to (killed,
// or its setup failed). Processes are detached from the agent (own session,
// output to a file) so they outlive it; record.json (the init's pid and
// config hash) lets the next agent adopt them without a restart.
package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/weft-dev/weft/internal/logrotate"
	"github.com/weft-dev/weft/internal/spec"
)

// Config is everything needed to run one container.
type Config struct {
	Cluster, Host, Container, Service string

	// Image is the directory of an unpacked image (internal/image) that
	// becomes the container's root, under a writable layer of its own;
	// "" builds the root from the host's system directories (rootfs.go).
	Image string

	Command []string
	Env     map[string]string
	Workdir string // default "/"
	User    string // "", name, uid, name:group or uid:gid; "" keeps root

	Netns    string // named netns (path /run/netns/<Netns>), created and wired by the overlay
	Hostname string // "" keeps the host's hostname

	// ResolvConf and Hosts are the contents shown at /etc/resolv.conf and
	// /etc/hosts inside the container; "" leaves the host's file visible.
	// They can change without a restart (see RefreshFiles).
	ResolvConf, Hosts string

	Volumes   []Mount
	Resources Resources        // cgroup limits (see ResourcesOf)
	Log       logrotate.Policy // size cap and generations of the container's log; zero: logrotate's defaults (not in Hash: applies from the next start)
	Restart   string           // spec.RestartAlways (default), spec.RestartOnFailure or spec.RestartNever

	// UserNS is the user namespace the container's processes run in
	// (userns.go; ClusterIDMap); the zero value runs them without one, as
	// host root when they are root. With Image, the image's files must be
	// owned in the same map (internal/image.Owners; checked at start).
	UserNS IDMap

	forceCopy bool // tests: a copied writable layer even where overlayfs works
}

// Mount bind-mounts HostPath at Path inside the container.
type Mount struct{ HostPath, Path string }

// Hash is a stable digest of everything that requires a restart when it
// changes. The contents of resolv.conf and hosts are left out on purpose:
// they are files rewritten in place, so a running container sees new
// contents without restarting; only whether they are mounted counts.
func (c Config) Hash() string {
	identity := struct {
		Command     []string          `json:"command"`
		Env         map[string]string `json:"env"` // encoding/json sorts map keys, so the digest is stable
		Workdir     string            `json:"workdir"`
		User        string            `json:"user"`
		Netns       string            `json:"netns"`
		Hostname    string            `json:"hostname"`
		HasResolv   bool              `json:"has_resolv"`
		HasHosts    bool              `json:"has_hosts"`
		Volumes     []Mount           `json:"volumes"`
		ServiceName string            `json:"service"`
		Resources   *Resources        `json:"resources,omitempty"` // nil when none, so hashes of containers without limits stay as they were
		Image       string            `json:"image,omitempty"`     // "" for host binaries, so their hashes stay as they were
		UserNS      *IDMap            `json:"userns,omitempty"`    // nil without one, so hashes of such containers stay as they were
	}{c.Command, c.Env, c.workdir(), c.User, c.Netns, c.Hostname, c.ResolvConf != "", c.Hosts != "", c.Volumes, c.Service, c.resourcesForHash(), c.Image, c.userNSForHash()}
	b, err := json.Marshal(identity)
	if err != nil {
		// Only strings, bools and slices of them: marshalling cannot fail.
		panic(fmt.Sprintf("hashing container config: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func (c Config) resourcesForHash() *Resources {
	if c.Resources == (Resources{}) {
		return nil
	}
	return &c.Resources
}

func (c Config) userNSForHash() *IDMap {
	if !c.UserNS.On() {
		return nil
	}
	return &c.UserNS
}

func (c Config) workdir() string {
	if c.Workdir == "" {
		return "/"
	}
	return c.Workdir
}

func (c Config) restartPolicy() string {
	if c.Restart == "" {
		return spec.RestartAlways
	}
	return c.Restart
}

// validate reports the first problem that makes the config impossible to run.
func (c Config) validate() error {
	switch {
	case c.Cluster == "" || c.Host == "" || c.Container == "":
		return fmt.Errorf("container config: cluster %q, host %q and container %q must all be set", c.Cluster, c.Host, c.Container)
	case len(c.Command) == 0 || c.Command[0] == "":
		return fmt.Errorf("container %s: command is empty; set the service's command", c.Container)
	case c.Netns == "":
		return fmt.Errorf("container %s: netns is empty; create the container's network namespace first", c.Container)
	}
	switch c.restartPolicy() {
	case spec.RestartAlways, spec.RestartOnFailure, spec.RestartNever:
	default:
		return fmt.Errorf("container %s: restart policy %q is unknown; use %s, %s or %s",
			c.Container, c.Restart, spec.RestartAlways, spec.RestartOnFailure, spec.RestartNever)
	}
	if err := c.Resources.validate(c.Container); err != nil {
		return err
	}
	if c.UserNS.On() && (c.UserNS.Size > IDMapSize || uint64(c.UserNS.HostBase)+uint64(c.UserNS.Size) > 1<<32) {
		return fmt.Errorf("container %s: user namespace map %s is out of range", c.Container, c.UserNS)
	}
	if c.Image != "" && !filepath.IsAbs(c.Image) {
		return fmt.Errorf("container %s: image directory %q is not absolute", c.Container, c.Image)
	}
	if !filepath.IsAbs(c.workdir()) {
		return fmt.Errorf("container %s: workdir %q is not absolute; give a path starting with /", c.Container, c.Workdir)
	}
	for _, v := range c.Volumes {
		if !filepath.IsAbs(v.HostPath) || !filepath.IsAbs(v.Path) {
			return fmt.Errorf("container %s: volume %q -> %q: both paths must be absolute", c.Container, v.HostPath, v.Path)
		}
	}
	return nil
}

// Event is one state transition of a supervised container.
type Event struct {
	State    string // model.StateStarting, StateRunning, StateBackoff, StateExited or StateFailed
	Pid      int
	ExitCode int // -1 when unknown (adopted processes, or not exited)
	Restarts int
	Adopted  bool // the process was started by an earlier agent (or an earlier Supervise)
	Err      error
	At       time.Time
}

// Record is what the runtime keeps on disk about a container's process, so
// that a restarted agent can adopt it or garbage-collect it.
type Record struct {
	Container string    `json:"container"`
	Service   string    `json:"service"`
	Hash      string    `json:"hash"`
	Pid       int       `json:"pid"`
	StartTime uint64    `json:"start_time"` // /proc/<pid>/stat field 22: tells a reused pid apart
	Started   time.Time `json:"started"`
	Restarts  int       `json:"restarts"` // at the init's start; container-init's workload record has the current count
	// InitSupervises is set for a process started as container-init that
	// runs and restarts the workload itself and records it in
	// workload.json. Records of older weft lack it: their process is the
	// workload itself.
	InitSupervises bool `json:"init_supervises"`
}
