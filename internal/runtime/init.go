package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/logrotate"
	"github.com/weft-dev/weft/internal/prio"
)

// initConfigEnv carries the init's JSON config from the runtime to
// `weft container-init`; the init removes it before exec'ing the command.
const initConfigEnv = "WEFT_CONTAINER_INIT"

// startSignalFD is the inherited pipe on which the runtime sends one byte
// once the process is in its cgroup and recorded; only then does the init
// run anything, so no process of the container escapes the cgroup.
const startSignalFD = 3

// initExitCode is the exit status of a container whose setup failed, as a
// shell reports a command it could not run.
const initExitCode = 127

// rootfsDir is the mount point of the container's root, in its state
// directory on the host (visible only inside the container's mount
// namespace, and only until the init pivots into it).
const rootfsDir = "rootfs"

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// initConfig is what `weft container-init` needs to become the container.
type initConfig struct {
	Command  []string          `json:"command"`
	Env      map[string]string `json:"env"`
	Workdir  string            `json:"workdir"`
	User     string            `json:"user"`
	Hostname string            `json:"hostname"`
	// Files to bind over /etc/resolv.conf and /etc/hosts; "" leaves the host's.
	ResolvConf string  `json:"resolv_conf"`
	Hosts      string  `json:"hosts"`
	Volumes    []Mount `json:"volumes"`
	// Image is the unpacked image that is the container's root, under
	// the writable layer Layer (rootfs_image.go); "" builds the root from
	// the host's system directories. ForceCopy makes the layer a copy even
	// where overlayfs works (tests of the fallback).
	Image     string `json:"image,omitempty"`
	Layer     string `json:"layer,omitempty"`
	ForceCopy bool   `json:"force_copy,omitempty"`
	// StateDir is the container's state directory, where the init records
	// the workload (workloadFile); Restart is the restart policy it applies
	// and Restarts the count so far, which it continues.
	StateDir string `json:"state_dir"`
	Restart  string `json:"restart"`
	Restarts int    `json:"restarts"`
	// Log bounds the container's log (zero: logrotate's defaults).
	Log logrotate.Policy `json:"log"`
	// UserNS is the workload's user namespace (zero: none; userns.go).
	UserNS IDMap `json:"userns,omitzero"`
}

// ContainerInitMain is the entry point of `weft container-init`. It runs as
// pid 1 of the container's new PID namespace, sets up its mount namespace,
// then runs the command as its child (dropped to the configured user),
// restarting it per the restart policy with backoff, forwarding signals to
// it and reaping orphans, until the policy says it is done or it is told to
// stop (SIGTERM, SIGINT or SIGQUIT, forwarded to the command). It then exits
// with the command's last exit code. When the container cannot be set up it
// prints why to its output (the container's log) and exits 127. It never
// returns.
func ContainerInitMain() {
	runUserNSStageIfAsked()
	// Started by the supervisor at the control plane's priority (prio):
	// the workload runs at the default.
	if err := prio.Set(prio.Workload); err != nil {
		fmt.Fprintf(os.Stderr, "weft container-init: %v\n", err)
		os.Exit(initExitCode)
	}
	// The main goroutine keeps the main thread, so the throwaway threads
	// that workloads are forked from (forkConfined) are never the thread
	// group leader, which cannot end and would stay confined.
	goruntime.LockOSThread()
	code, err := containerInit()
	if err != nil {
		fmt.Fprintf(os.Stderr, "weft container-init: %v\n", err)
		os.Exit(initExitCode)
	}
	os.Exit(code)
}

// outputDrainTimeout bounds how long an exiting init waits for the
// workload's output still in its pipe to reach the log.
const outputDrainTimeout = 2 * time.Second

func containerInit() (int, error) {
	var cfg initConfig
	payload := os.Getenv(initConfigEnv)
	if payload == "" {
		return 0, fmt.Errorf("%s is not set: container-init is started by the weft agent, not by hand", initConfigEnv)
	}
	if err := json.Unmarshal([]byte(payload), &cfg); err != nil {
		return 0, fmt.Errorf("decoding config from %s: %w", initConfigEnv, err)
	}
	if len(cfg.Command) == 0 {
		return 0, errors.New("config has no command")
	}
	if cfg.StateDir == "" {
		return 0, errors.New("config has no state directory")
	}
	if err := awaitStartSignal(); err != nil {
		return 0, err
	}
	// The agent may itself have inherited descriptors without close-on-exec
	// (from whatever started it); none of them belongs in the container.
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return 0, fmt.Errorf("marking inherited file descriptors close-on-exec: %w", err)
	}
	// The init's memory, environment (this config) and executable stay out
	// of reach of the container's processes.
	if err := setNotDumpable(); err != nil {
		return 0, err
	}
	// The host's /proc and the container's state directory, kept open
	// before the container's root hides them: the workload's pid as the
	// host sees it is read in the one, its record written in the other.
	hostProc, err := os.Open("/proc")
	if err != nil {
		return 0, fmt.Errorf("opening the host's /proc: %w", err)
	}
	defer hostProc.Close()
	stateDir, err := os.OpenRoot(cfg.StateDir)
	if err != nil {
		return 0, fmt.Errorf("opening the container's state directory %s: %w", cfg.StateDir, err)
	}
	defer stateDir.Close()
	// The container's log, rotated by size (cfg.Log; logrotate's defaults).
	// The workload writes to a pipe this init copies from; the init's own
	// messages go to descriptors 1 and 2, which follow every rotation.
	out, err := logrotate.Open(stateDir, logFile, cfg.Log, 1, 2)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("creating the workload's output pipe: %w", err)
	}
	defer outW.Close()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer outR.Close()
		if _, err := io.Copy(out, outR); err != nil {
			fmt.Fprintf(os.Stderr, "weft container-init: copying the workload's output: %v\n", err)
		}
	}()
	// The workload's last output is copied before the log closes and the
	// init exits (returning closed the log under the copier and exiting
	// dropped what was still in the pipe), for at most outputDrainTimeout:
	// a process the workload left behind may hold the pipe open.
	defer func() {
		outW.Close()
		select {
		case <-copied:
		case <-time.After(outputDrainTimeout):
		}
	}()
	if err := buildRootfs(filepath.Join(cfg.StateDir, rootfsDir), cfg); err != nil {
		return 0, err
	}
	if cfg.Hostname != "" {
		if err := syscall.Sethostname([]byte(cfg.Hostname)); err != nil {
			return 0, fmt.Errorf("setting hostname %q: %w", cfg.Hostname, err)
		}
	}
	cred := credentials{uid: 0, gid: 0, home: "/root"}
	if cfg.User != "" {
		if cred, err = resolveUser(cfg.User); err != nil {
			return 0, err
		}
	}
	workdir := cfg.Workdir
	if workdir == "" {
		workdir = "/"
	}
	// A relative command resolves against the workdir, as it did when the
	// init chdir'ed and exec'ed it itself.
	if err := os.Chdir(workdir); err != nil {
		return 0, fmt.Errorf("changing to workdir %s: %w", workdir, err)
	}
	env := commandEnv(cfg.Env, cred.home, cfg.Hostname)
	path, err := lookPath(cfg.Command[0], env)
	if err != nil {
		return 0, err
	}
	w := &workloadRunner{
		cfg:      cfg,
		path:     path,
		env:      env,
		workdir:  workdir,
		cred:     cred,
		hostProc: fmt.Sprintf("/proc/self/fd/%d", hostProc.Fd()),
		stateDir: stateDir,
		output:   outW,
	}
	return w.run(), nil
}

func awaitStartSignal() error {
	f := os.NewFile(startSignalFD, "start signal")
	defer f.Close()
	var b [1]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return fmt.Errorf("the weft agent went away before the container was started (%v)", err)
	}
	return nil
}

// credentials is who the command runs as.
type credentials struct {
	uid, gid int
	groups   []int
	home     string
}

// resolveUser turns "name", "uid", "name:group" or "uid:gid" into
// credentials using /etc/passwd and /etc/group. A numeric uid missing from
// /etc/passwd is allowed; its group is then the same number unless given.
func resolveUser(spec string) (credentials, error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	cred := credentials{home: "/"}
	var u *user.User
	if id, err := strconv.Atoi(name); err == nil {
		cred.uid, cred.gid = id, id
		u, _ = user.LookupId(name)
	} else {
		if u, err = user.Lookup(name); err != nil {
			return cred, fmt.Errorf("user %q: not found in /etc/passwd; use an existing user or a numeric uid", name)
		}
	}
	if u != nil {
		uid, err := strconv.Atoi(u.Uid)
		if err != nil {
			return cred, fmt.Errorf("user %q: uid %q is not a number", name, u.Uid)
		}
		gid, err := strconv.Atoi(u.Gid)
		if err != nil {
			return cred, fmt.Errorf("user %q: gid %q is not a number", name, u.Gid)
		}
		cred.uid, cred.gid, cred.home = uid, gid, u.HomeDir
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if id, err := strconv.Atoi(s); err == nil {
					cred.groups = append(cred.groups, id)
				}
			}
		}
	}
	if hasGroup {
		if id, err := strconv.Atoi(group); err == nil {
			cred.gid = id
		} else {
			g, err := user.LookupGroup(group)
			if err != nil {
				return cred, fmt.Errorf("user %q: group %q not found in /etc/group; use an existing group or a numeric gid", spec, group)
			}
			if cred.gid, err = strconv.Atoi(g.Gid); err != nil {
				return cred, fmt.Errorf("user %q: gid %q of group %q is not a number", spec, g.Gid, group)
			}
		}
	}
	if !slices.Contains(cred.groups, cred.gid) {
		cred.groups = append(cred.groups, cred.gid)
	}
	return cred, nil
}

// sysCredential is who the workload runs as, applied by the kernel-side
// fork: groups, then gid, then uid.
func (c credentials) sysCredential() *syscall.Credential {
	groups := make([]uint32, len(c.groups))
	for i, g := range c.groups {
		groups[i] = uint32(g)
	}
	return &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid), Groups: groups}
}

// commandEnv is the command's environment: the configured variables plus
// PATH, HOME and HOSTNAME when not configured, sorted for a stable order.
func commandEnv(vars map[string]string, home, hostname string) []string {
	all := map[string]string{"PATH": defaultPath, "HOME": home}
	if hostname != "" {
		all["HOSTNAME"] = hostname
	}
	for k, v := range vars {
		all[k] = v
	}
	env := make([]string, 0, len(all))
	for k, v := range all {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// lookPath finds the command in the PATH of the command's environment (not
// the init's), as a shell started with that environment would.
func lookPath(name string, env []string) (string, error) {
	for _, kv := range env {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			if err := os.Setenv("PATH", p); err != nil {
				return "", fmt.Errorf("setting PATH for the command lookup: %w", err)
			}
		}
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("command %q: %w (PATH=%s)", name, err, os.Getenv("PATH"))
	}
	return path, nil
}
