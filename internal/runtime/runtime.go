package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

const (
	recordFile     = "record.json"
	logFile        = "output.log"
	resolvConfFile = "resolv.conf"
	hostsFile      = "hosts"

	// replaceGrace is how long a recorded process whose config changed gets
	// to exit on SIGTERM before Supervise kills it to start the new config.
	replaceGrace = 5 * time.Second
	// killTimeout bounds waiting for SIGKILLed processes to disappear.
	killTimeout = 5 * time.Second
)

// errStopped means Stop was called before the process could be started.
var errStopped = errors.New("container is being stopped")

// Runtime starts, supervises, adopts and stops the containers of this
// machine. The zero value with Exe set is ready; use it by pointer.
type Runtime struct {
	StateRoot string       // default naming.DefaultStateRoot
	Exe       string       // path of the weft binary, run as `<Exe> container-init`
	Log       *slog.Logger // default: discard

	mu       sync.Mutex
	controls map[string]*control // by cluster/host/container

	userNSOnce sync.Once
	userNSErr  error // why the kernel gives no user namespace; nil when it does

	staticOnce sync.Once
	staticErr  error // why the userns stage cannot run in an image's root; nil when it can (stage_static.go)

	// watch opens the inotify descriptor a supervisor waits on (dirwatch.go);
	// nil: watchDir. Tests make it fail as the kernel does at its limits.
	watch        func(dir string) (int, error)
	pollingNoted atomic.Bool // the fallback to polling was logged
}

// control serialises everything that touches one container's process.
type control struct {
	// op is held while adopting, starting or stopping the process and
	// while writing its record, so Stop never misses a process being started.
	op sync.Mutex
	// session is the running Supervise, if any; guarded by Runtime.mu.
	session *session
}

// session is one Supervise call's link to Stop.
type session struct {
	stop    chan struct{} // closed by Stop: do not restart, return
	stopped bool          // guarded by Runtime.mu
	done    chan struct{} // closed when Supervise returns
}

func (s *session) stopRequested() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (r *Runtime) logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Runtime) stateRoot() string {
	if r.StateRoot == "" {
		return naming.DefaultStateRoot
	}
	return r.StateRoot
}

func (r *Runtime) dir(cluster, host, container string) string {
	return naming.ContainerStateDir(r.stateRoot(), cluster, host, container)
}

// LogPath is where the container's output goes.
func (r *Runtime) LogPath(cluster, host, container string) string {
	return filepath.Join(r.dir(cluster, host, container), logFile)
}

func cgroupPath(cluster, host, container string) string {
	return naming.CgroupRelPath(cluster, host, "c", container)
}

// controlFor returns the container's control; callers hold r.mu.
func (r *Runtime) controlFor(cluster, host, container string) *control {
	key := cluster + "/" + host + "/" + container
	if r.controls == nil {
		r.controls = make(map[string]*control)
	}
	c, ok := r.controls[key]
	if !ok {
		c = &control{}
		r.controls[key] = c
	}
	return c
}

// beginSession makes this call the container's only Supervise, waiting for
// an earlier one (e.g. one whose context was just cancelled) to return. It
// reports false when ctx is done first.
func (r *Runtime) beginSession(ctx context.Context, cfg Config) (*control, *session, bool) {
	for {
		r.mu.Lock()
		c := r.controlFor(cfg.Cluster, cfg.Host, cfg.Container)
		if c.session == nil {
			s := &session{stop: make(chan struct{}), done: make(chan struct{})}
			c.session = s
			r.mu.Unlock()
			return c, s, true
		}
		done := c.session.done
		r.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, nil, false
		}
	}
}

func (r *Runtime) endSession(c *control, s *session) {
	r.mu.Lock()
	c.session = nil
	close(s.done)
	r.mu.Unlock()
}

// Supervise keeps the container running until ctx is cancelled (it then
// returns nil WITHOUT stopping the process: the agent may be restarting) or
// Stop is called. It first adopts a recorded container-init with the same
// config hash (one with another hash is stopped); otherwise it starts one.
//
// The workload's own restarts (per cfg.Restart, with backoff 100ms doubling
// to 10s, reset after a run of 10s) are done by container-init, with or
// without a Supervise; Supervise follows them through the init's workload
// record and reports them as Events. It restarts the init itself, per the
// same policy and backoff, only when the init ends without having been
// told to (killed, or its setup failed). Every transition is reported via
// onEvent (may be nil; called from this goroutine). It returns nil when ctx
// is done or the container is stopped or exited for good, and an error when
// cfg is invalid or, with restart policy never, the start failed. Only one
// Supervise runs per container: a second call waits for the first to return.
func (r *Runtime) Supervise(ctx context.Context, cfg Config, onEvent func(Event)) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if r.Exe == "" {
		return errors.New("runtime: Exe (the path of the weft binary) is not set")
	}
	emit := func(e Event) {
		e.At = time.Now()
		if onEvent != nil {
			onEvent(e)
		}
	}
	log := r.logger().With("container", cfg.Container)
	ctl, sess, ok := r.beginSession(ctx, cfg)
	if !ok {
		return nil
	}
	defer r.endSession(ctl, sess)
	dir := r.dir(cfg.Cluster, cfg.Host, cfg.Container)

	policy := cfg.restartPolicy()
	var delays Backoff
	ad, err := r.adopt(ctx, ctl, cfg)
	if err != nil {
		log.Warn("not adopting recorded process", "err", err)
	}
	proc, restarts, view := ad.proc, ad.restarts, &workloadView{adopting: true, legacy: ad.legacy}
	if proc != nil {
		log.Info("adopted container", "init_pid", proc.pid)
		if ad.legacy {
			emit(Event{State: model.StateRunning, Pid: proc.pid, ExitCode: -1, Restarts: restarts, Adopted: true})
		}
	}
	if ad.done != nil {
		// It finished for good while nobody watched.
		emit(Event{State: model.StateExited, Pid: ad.done.LastPid, ExitCode: ad.done.LastExit, Restarts: ad.done.Restarts})
		return nil
	}
	for {
		if proc == nil {
			if ctx.Err() != nil {
				return nil
			}
			emit(Event{State: model.StateStarting, ExitCode: -1, Restarts: restarts})
			proc, err = r.start(ctl, sess, cfg, restarts)
			if errors.Is(err, errStopped) {
				emit(Event{State: model.StateExited, ExitCode: -1, Restarts: restarts})
				return nil
			}
			if err != nil {
				log.Error("starting container", "err", err)
				emit(Event{State: model.StateFailed, ExitCode: -1, Restarts: restarts, Err: err})
				if policy == spec.RestartNever {
					return err
				}
				d := delays.Delay(0)
				emit(Event{State: model.StateBackoff, ExitCode: -1, Restarts: restarts, Err: err})
				if !pause(ctx, sess, d) {
					if sess.stopRequested() {
						emit(Event{State: model.StateExited, ExitCode: -1, Restarts: restarts})
					}
					return nil
				}
				restarts++
				continue
			}
			log.Info("started container", "init_pid", proc.pid, "restarts", restarts)
			view = &workloadView{}
		}

		if err := r.follow(ctx, dir, proc, view, emit); err != nil {
			proc.close()
			if ctx.Err() != nil {
				return nil // the process stays; a later Supervise adopts it
			}
			return fmt.Errorf("watching container %s (pid %d): %w", cfg.Container, proc.pid, err)
		}
		// The init is gone. Its last record says why when it exited on its
		// own (the policy said done, or it was told to stop); otherwise it
		// was killed or could not set the container up.
		code := reap(proc.pidfd)
		ran := time.Since(proc.started)
		pid := view.pid
		if view.legacy {
			pid = proc.pid
		}
		proc.close()
		proc = nil
		if st := view.last; view.read {
			restarts = st.Restarts
			if st.State == model.StateExited {
				pid, code = st.LastPid, st.LastExit
			}
		}
		log.Info("container exited", "pid", pid, "exit_code", code, "ran", ran.Round(time.Millisecond))

		if sess.stopRequested() || !shouldRestart(policy, code) {
			emit(Event{State: model.StateExited, Pid: pid, ExitCode: code, Restarts: restarts})
			return nil
		}
		d := delays.Delay(ran)
		emit(Event{State: model.StateBackoff, Pid: pid, ExitCode: code, Restarts: restarts})
		if !pause(ctx, sess, d) {
			if sess.stopRequested() {
				emit(Event{State: model.StateExited, Pid: pid, ExitCode: code, Restarts: restarts})
			}
			return nil
		}
		restarts++
	}
}

// follow reports the workload record of the container's init as Events
// until the init exits (nil) or ctx is done (ctx's error). It wakes on the
// init's pidfd and on inotify events of the state directory, where the
// init replaces its record on every transition; past inotify's limits it
// polls the record instead (dirwatch.go).
func (r *Runtime) follow(ctx context.Context, dir string, proc *process, view *workloadView, emit func(Event)) error {
	if view.legacy {
		// Started by a weft whose container process was the workload
		// itself: there is no workload record to follow.
		return awaitExit(ctx, proc.pidfd)
	}
	ino, err := r.openWatch(dir)
	if err != nil {
		return err
	}
	var stamp fileStamp // polling (ino < 0): the record last read
	if ino >= 0 {
		defer unix.Close(ino)
	} else {
		stamp.changed(dir)
	}
	buf := make([]byte, 4096)
	for {
		view.update(dir, emit)
		fds := []unix.PollFd{{Fd: int32(proc.pidfd), Events: unix.POLLIN}}
		if ino >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(ino), Events: unix.POLLIN})
		}
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := unix.Poll(fds, int(pollInterval/time.Millisecond))
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("polling pidfd and inotify: %w", err)
			}
			if n > 0 || (ino < 0 && stamp.changed(dir)) {
				break
			}
		}
		for ino >= 0 && fds[1].Revents != 0 {
			if n, err := unix.Read(ino, buf); n <= 0 || err != nil {
				break
			}
		}
		if fds[0].Revents != 0 {
			view.update(dir, emit) // the init's last word
			return nil
		}
	}
}

// pause waits d and reports whether supervision goes on (false: ctx done
// or Stop called).
func pause(ctx context.Context, s *session, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.stop:
		return false
	}
}

// adoption is what adopt found in the container's state directory.
type adoption struct {
	proc     *process       // the recorded init, alive and running this config; nil: start one
	restarts int            // restart count to report or continue from
	legacy   bool           // proc is the workload itself (started by an older weft)
	done     *workloadState // the workload finished for good while nobody watched
}

// adopt returns the recorded process when it is alive and runs cfg, with the
// restart count from its records. A live recorded process with another
// config is stopped. With no process to adopt it returns the restart count a
// fresh start continues from, or, when the init exited for good on its own
// (per its restart policy), its last record.
func (r *Runtime) adopt(ctx context.Context, ctl *control, cfg Config) (adoption, error) {
	ctl.op.Lock()
	defer ctl.op.Unlock()
	dir := r.dir(cfg.Cluster, cfg.Host, cfg.Container)
	rec, err := readRecord(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return adoption{}, nil
	}
	if err != nil {
		return adoption{}, err
	}
	restarts := rec.Restarts
	st, stErr := readWorkload(dir)
	if rec.InitSupervises && stErr == nil {
		restarts = st.Restarts
	}
	proc, err := attach(rec.Pid, rec.StartTime)
	if errors.Is(err, errGone) {
		if rec.Hash != cfg.Hash() {
			return adoption{}, nil
		}
		if rec.InitSupervises && stErr == nil && st.State == model.StateExited && !shouldRestart(cfg.restartPolicy(), st.LastExit) {
			return adoption{restarts: restarts, done: &st}, nil
		}
		// It died while nobody watched: starting it again is a restart.
		return adoption{restarts: restarts + 1}, nil
	}
	if err != nil {
		return adoption{}, err
	}
	stale := ""
	switch {
	case rec.Hash != cfg.Hash():
		stale = "it was started with another config"
	case !sameNetns(proc.pid, cfg.Netns):
		// The namespace was recreated: the old process sits in a detached
		// one nobody can reach.
		stale = "it runs in an older network namespace " + cfg.Netns
	}
	if stale != "" {
		defer proc.close()
		r.logger().Info("replacing container process", "container", cfg.Container, "pid", proc.pid, "reason", stale)
		if err := terminate(ctx, proc, replaceGrace, true); err != nil {
			return adoption{}, fmt.Errorf("stopping pid %d of container %s because %s: %w", proc.pid, cfg.Container, stale, err)
		}
		return adoption{}, nil
	}
	if err := writeFiles(dir, cfg); err != nil {
		proc.close()
		return adoption{}, err
	}
	proc.started = rec.Started
	return adoption{proc: proc, restarts: restarts, legacy: !rec.InitSupervises}, nil
}

// sameNetns reports whether pid is in the network namespace nsName (a name
// under /run/netns, or an absolute path).
func sameNetns(pid int, nsName string) bool {
	path := nsName
	if !filepath.IsAbs(path) {
		path = filepath.Join("/run/netns", nsName)
	}
	var want, got syscall.Stat_t
	if syscall.Stat(path, &want) != nil || syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &got) != nil {
		return false
	}
	return want.Dev == got.Dev && want.Ino == got.Ino
}

// start starts the container's process: `<Exe> container-init` in new
// mount, PID and UTS namespaces, from a thread inside the container's
// network namespace, detached from the agent. The init waits for the start
// signal until the process is in its cgroup and recorded.
func (r *Runtime) start(ctl *control, sess *session, cfg Config, restarts int) (*process, error) {
	ctl.op.Lock()
	defer ctl.op.Unlock()
	if sess.stopRequested() {
		return nil, errStopped
	}
	dir := r.dir(cfg.Cluster, cfg.Host, cfg.Container)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating state directory of container %s: %w", cfg.Container, err)
	}
	if err := writeFiles(dir, cfg); err != nil {
		return nil, err
	}
	// The new init writes its own workload record; an old one must not be
	// taken for it.
	if err := removeWorkload(dir); err != nil {
		return nil, err
	}
	cg := cgroupPath(cfg.Cluster, cfg.Host, cfg.Container)
	// Leftovers of the previous run (PID namespace teardown is asynchronous)
	// must not be mistaken for the new process's.
	if err := cgroup.KillAll(cg, killTimeout); err != nil {
		return nil, fmt.Errorf("emptying cgroup of container %s before starting it: %w", cfg.Container, err)
	}
	out, err := os.OpenFile(filepath.Join(dir, logFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log of container %s: %w", cfg.Container, err)
	}
	defer out.Close()
	signalR, signalW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating start-signal pipe: %w", err)
	}
	defer signalW.Close()
	defer signalR.Close()

	if cfg.UserNS.On() {
		if err := r.UserNSFor(cfg.UserNS, cfg.Image != ""); err != nil {
			// Degrade by name: the agent's log and the container's.
			r.logger().Warn("running the container without a user namespace: root in it is host root", "container", cfg.Container, "err", err)
			fmt.Fprintf(out, "weft: %v: this container runs without a user namespace (root in it is host root)\n", err)
			cfg.UserNS = IDMap{}
		}
	}
	for _, v := range cfg.Volumes {
		if err := os.MkdirAll(v.HostPath, 0o750); err != nil {
			return nil, fmt.Errorf("creating volume %s of container %s: %w", v.HostPath, cfg.Container, err)
		}
		if err := OwnVolume(v.HostPath, cfg.UserNS, cfg.Cluster); err != nil {
			return nil, fmt.Errorf("container %s: %w", cfg.Container, err)
		}
	}

	var layer string
	if cfg.Image != "" {
		if err := imageOwnedFor(cfg.Image, cfg.UserNS); err != nil {
			return nil, fmt.Errorf("container %s: %w", cfg.Container, err)
		}
		if layer, err = prepareLayer(dir, cfg.Hash()); err != nil {
			return nil, fmt.Errorf("container %s: %w", cfg.Container, err)
		}
	}
	payload, err := json.Marshal(initConfig{
		Image:      cfg.Image,
		Layer:      layer,
		ForceCopy:  cfg.forceCopy,
		Command:    cfg.Command,
		Env:        cfg.Env,
		Workdir:    cfg.workdir(),
		User:       cfg.User,
		Hostname:   cfg.Hostname,
		ResolvConf: mountedFile(dir, resolvConfFile, cfg.ResolvConf),
		Hosts:      mountedFile(dir, hostsFile, cfg.Hosts),
		Volumes:    cfg.Volumes,
		StateDir:   dir,
		Restart:    cfg.restartPolicy(),
		Restarts:   restarts,
		Log:        cfg.Log,
		UserNS:     cfg.UserNS,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding init config of container %s: %w", cfg.Container, err)
	}
	cmd := exec.Command(r.Exe, "container-init")
	cmd.Env = []string{initConfigEnv + "=" + string(payload)}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out // a file, not a pipe: output never depends on the agent
	cmd.ExtraFiles = []*os.File{signalR}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// The cgroup namespace is made by the init for the workload, once
		// the init is in the container's cgroup (see forkConfined).
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
		Setsid:     true, // no signal aimed at the agent's session or terminal reaches it
	}
	if err := startInNetns(cmd, cfg.Netns); err != nil {
		return nil, fmt.Errorf("starting container %s: %w", cfg.Container, err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release() // waited for through the pidfd below
	_ = signalR.Close()

	p, err := ownChild(pid)
	if err != nil {
		return nil, err
	}
	p.started = time.Now()
	abort := func(err error) (*process, error) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = awaitExit(context.Background(), p.pidfd)
		reap(p.pidfd)
		p.close()
		return nil, err
	}
	if err := cgroup.JoinLimited(cg, pid, cfg.Resources.cgroupLimits()); err != nil {
		return abort(fmt.Errorf("starting container %s: %w", cfg.Container, err))
	}
	rec := Record{
		Container: cfg.Container, Service: cfg.Service, Hash: cfg.Hash(),
		Pid: pid, StartTime: p.startTime, Started: p.started, Restarts: restarts,
		InitSupervises: true,
	}
	if err := writeRecord(dir, rec); err != nil {
		return abort(err)
	}
	if _, err := signalW.Write([]byte{1}); err != nil {
		return abort(fmt.Errorf("signalling container %s to start: %w", cfg.Container, err))
	}
	return p, nil
}

// ownChild opens a pidfd on a child this process has not reaped yet, so the
// pid cannot have been reused.
func ownChild(pid int) (*process, error) {
	st, err := procStartTime(pid)
	if err == nil {
		var p *process
		if p, err = attach(pid, st); err == nil {
			return p, nil
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, 0, nil)
	return nil, fmt.Errorf("watching started process %d: %w", pid, err)
}

// Stop terminates the container's process (SIGTERM, SIGKILL after grace),
// kills whatever is left in its cgroup, and removes its record; its log and
// volumes stay. It is safe when nothing runs. A Supervise watching the
// container returns instead of restarting it.
func (r *Runtime) Stop(ctx context.Context, cluster, host, container string, grace time.Duration) error {
	r.mu.Lock()
	ctl := r.controlFor(cluster, host, container)
	watched := ctl.session != nil
	if watched && !ctl.session.stopped {
		ctl.session.stopped = true
		close(ctl.session.stop)
	}
	r.mu.Unlock()

	ctl.op.Lock()
	defer ctl.op.Unlock()
	dir := r.dir(cluster, host, container)
	rec, err := readRecord(dir)
	switch {
	case err == nil:
		proc, err := attach(rec.Pid, rec.StartTime)
		if err == nil {
			// A watching Supervise reaps the process and reports its exit code.
			err = terminate(ctx, proc, grace, !watched)
			proc.close()
		}
		if err != nil && !errors.Is(err, errGone) {
			return fmt.Errorf("stopping container %s: %w", container, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		// The cgroup below still finds the processes.
		r.logger().Warn("unreadable container record", "container", container, "err", err)
	}
	if err := cgroup.KillAll(cgroupPath(cluster, host, container), killTimeout); err != nil {
		return fmt.Errorf("stopping container %s: %w", container, err)
	}
	if err := os.Remove(filepath.Join(dir, recordFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing record of container %s: %w", container, err)
	}
	return removeWorkload(dir)
}

// Records lists the containers with a record on this host, sorted by name.
// Records that cannot be read are skipped (and logged).
func (r *Runtime) Records(cluster, host string) ([]Record, error) {
	root := filepath.Join(naming.HostStateDir(r.stateRoot(), cluster, host), "containers")
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing container records in %s: %w", root, err)
	}
	var recs []Record
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		rec, err := readRecord(filepath.Join(root, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			r.logger().Warn("skipping unreadable container record", "container", e.Name(), "err", err)
			continue
		}
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b Record) int { return strings.Compare(a.Container, b.Container) })
	return recs, nil
}

// RefreshFiles rewrites the container's resolv.conf and hosts in place, so a
// running container sees new contents without a restart (they are not part
// of Config.Hash). Supervise also does this when it starts or adopts.
func (r *Runtime) RefreshFiles(cfg Config) error {
	r.mu.Lock()
	ctl := r.controlFor(cfg.Cluster, cfg.Host, cfg.Container)
	r.mu.Unlock()
	ctl.op.Lock()
	defer ctl.op.Unlock()
	dir := r.dir(cfg.Cluster, cfg.Host, cfg.Container)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating state directory of container %s: %w", cfg.Container, err)
	}
	return writeFiles(dir, cfg)
}

// mountedFile is the path of a generated file to mount, or "" when the
// container keeps the host's file.
func mountedFile(dir, name, content string) string {
	if content == "" {
		return ""
	}
	return filepath.Join(dir, name)
}

// writeFiles writes the generated files, in place and only when changed:
// a bind mount pins the inode, so replacing the file (rename) would hide
// the new contents from a running container.
func writeFiles(dir string, cfg Config) error {
	for _, f := range []struct{ name, content string }{{resolvConfFile, cfg.ResolvConf}, {hostsFile, cfg.Hosts}} {
		if f.content == "" {
			continue
		}
		path := filepath.Join(dir, f.name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, []byte(f.content)) {
			continue
		}
		if err := os.WriteFile(path, []byte(f.content), 0o644); err != nil {
			return fmt.Errorf("writing %s of container %s: %w", f.name, cfg.Container, err)
		}
	}
	return nil
}

func readRecord(dir string) (Record, error) {
	var rec Record
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("decoding container record %s: %w", filepath.Join(dir, recordFile), err)
	}
	return rec, nil
}

// writeRecord replaces the record atomically, so a crash never leaves a
// half-written one.
func writeRecord(dir string, rec Record) error {
	if err := writeJSONAtomic(filepath.Join(dir, recordFile), rec); err != nil {
		return fmt.Errorf("recording container %s: %w", rec.Container, err)
	}
	return nil
}
