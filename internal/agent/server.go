package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/logrotate"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/plan"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathHealth, a.handleHealth)
	mux.HandleFunc("POST "+api.PathApply, a.handleApply)
	mux.HandleFunc("GET "+api.PathStatus, a.handleStatus)
	mux.HandleFunc("GET "+api.PathLogs, a.handleLogs)
	mux.HandleFunc("GET "+api.PathSpec, a.handleSpec)
	mux.HandleFunc("POST "+api.PathScale, a.handleScale)
	mux.HandleFunc("POST "+api.PathShift, a.handleStartShift)
	mux.HandleFunc("GET "+api.PathShift, a.handleShifts)
	mux.HandleFunc("POST "+api.PathRestart, a.handleRestart)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) { api.WriteJSON(w, code, v) }

func writeError(w http.ResponseWriter, code int, err error) { api.WriteError(w, code, err) }

func (a *Agent) handleHealth(w http.ResponseWriter, _ *http.Request) {
	phase, _ := a.phase.Load().(string)
	writeJSON(w, http.StatusOK, api.Health{
		Host:     a.self.Name,
		Manager:  a.isManager(),
		StoreOK:  a.store() != nil,
		Phase:    phase,
		Pid:      os.Getpid(),
		RSSBytes: selfRSS(),
	})
}

var errNotReady = errors.New("agent is not connected to the store yet; retry in a moment")

// storeAndRequest starts a handler that writes to the store: the store
// (503 while not connected yet) and the JSON request body, at most limit
// bytes (400 naming what when it does not decode). ok false means the
// answer is written.
func storeAndRequest[T any](a *Agent, w http.ResponseWriter, r *http.Request, limit int64, what string) (st *store.Store, req T, ok bool) {
	if st = a.store(); st == nil {
		writeError(w, http.StatusServiceUnavailable, errNotReady)
		return nil, req, false
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, limit)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("decoding %s: %w", what, err))
		return nil, req, false
	}
	return st, req, true
}

func (a *Agent) handleApply(w http.ResponseWriter, r *http.Request) {
	st, c, ok := storeAndRequest[spec.Cluster](a, w, r, 16<<20, "cluster file")
	if !ok {
		return
	}
	if probs := c.Validate(); len(probs) > 0 {
		writeError(w, http.StatusUnprocessableEntity, probs)
		return
	}
	if c.Name != a.cfg.Cluster {
		writeError(w, http.StatusBadRequest, fmt.Errorf("this agent belongs to cluster %s, not %s", a.cfg.Cluster, c.Name))
		return
	}
	res, code, err := a.applySpec(r.Context(), st, &c, model.ScaledByFile)
	if err != nil {
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handleScale sets services' replicas in the applied spec, as `weft scale`
// asks: the same path as an apply of the edited file, recorded as made by
// the command.
func (a *Agent) handleScale(w http.ResponseWriter, r *http.Request) {
	st, req, ok := storeAndRequest[api.ScaleRequest](a, w, r, 1<<20, "scale request")
	if !ok {
		return
	}
	c, err := st.Spec(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	if c == nil {
		writeError(w, http.StatusConflict, errors.New("cluster has no applied file yet; run weft up first"))
		return
	}
	for _, name := range slices.Sorted(maps.Keys(req.Replicas)) {
		i := slices.IndexFunc(c.Services, func(s spec.Service) bool { return s.Name == name })
		if i < 0 {
			writeError(w, http.StatusUnprocessableEntity, fmt.Errorf("scale %s=%d: no service %s in cluster %s", name, req.Replicas[name], name, c.Name))
			return
		}
		c.Services[i].Replicas = req.Replicas[name]
	}
	if probs := c.Validate(); len(probs) > 0 {
		writeError(w, http.StatusUnprocessableEntity, probs)
		return
	}
	res, code, err := a.applySpec(r.Context(), st, c, model.ScaledByCommand)
	if err != nil {
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// applySpec stores a validated spec and says what it changes: containers
// that come and go (draining and surge instances of changes in progress
// aside) and services whose definition rolls out. Changed replicas are
// recorded with who changed them (by).
func (a *Agent) applySpec(ctx context.Context, st *store.Store, c *spec.Cluster, by string) (api.ApplyResult, int, error) {
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return api.ApplyResult{}, http.StatusServiceUnavailable, err
	}
	prev := map[string]model.Assignment{}
	for name, as := range snap.Assign {
		if as.Draining.IsZero() && !as.Surge {
			prev[name] = as
		}
	}
	next, err := plan.Place(c, prev)
	if err != nil {
		return api.ApplyResult{}, http.StatusUnprocessableEntity, err
	}
	changes := plan.Diff(prev, next)
	var scales []model.Scale
	now := time.Now().UTC()
	for _, s := range c.Services {
		if snap.Spec == nil {
			continue
		}
		if old, ok := snap.Spec.ServiceByName(s.Name); ok && old.Replicas != s.Replicas {
			scales = append(scales, model.Scale{Service: s.Name, From: old.Replicas, To: s.Replicas, By: by, At: now})
		}
		if r, ok := snap.Rollouts[s.Name]; ok {
			if h := plan.DefHash(s); h != r.To && h != r.Target() {
				changes.Updated = append(changes.Updated, s.Name)
			}
		}
	}
	changed, err := st.PutSpec(ctx, c)
	if err != nil {
		return api.ApplyResult{}, http.StatusServiceUnavailable, err
	}
	if err := st.PutScales(ctx, scales); err != nil {
		a.log.Warn("recording scale changes", "err", err)
	}
	planned := map[string]string{}
	for name, as := range next {
		planned[name] = as.Host
	}
	weights, err := a.reconcileWeights(ctx, st, c)
	if err != nil {
		a.log.Warn("reconciling live route weights with the file", "err", err)
	}
	return api.ApplyResult{SpecChanged: changed, Changes: changes, Planned: planned, Weights: weights}, http.StatusOK, nil
}

func (a *Agent) handleStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
	defer cancel()
	snap, view := a.statusSnapshot(ctx)
	snap, refused := (&vetter{cluster: a.cfg.Cluster}).vetSnapshot(snap)
	c := snap.Spec
	if c == nil {
		c = a.boot
	}
	out := api.Status{Cluster: a.cfg.Cluster, Applied: snap.Spec != nil, Refused: refused}
	members := a.memberStates(ctx, c)
	perHost := map[string]int{}
	for _, as := range snap.Assign {
		perHost[as.Host]++
	}
	for _, h := range c.Hosts {
		hs := api.HostStatus{
			Name: h.Name, Subnet: h.Subnet, Address: h.Address.String(),
			OverlayAddr: c.HostOverlayAddr(h.Name).String(),
			Netns:       naming.HostNetns(c.Name, h.Name),
			Agent:       "down", EtcdMember: "-", Containers: perHost[h.Name],
		}
		if h.Name == a.self.Name {
			hs.Firewall = a.firewallStatus(ctx)
		}
		for _, role := range h.Roles {
			if role == spec.RoleManager {
				hs.Manager = true
				hs.EtcdMember = members[h.Name]
			}
		}
		if rec, ok := snap.Hosts[h.Name]; ok {
			hs.Agent = "up"
			hs.AgentPid = rec.AgentPid
		}
		out.Hosts = append(out.Hosts, hs)
	}
	if snap.Spec != nil {
		out.Expected = snap.Spec.ContainerCount()
	}
	for name, as := range snap.Assign {
		s, ok := snap.Status[name]
		if !ok || s.Host != as.Host {
			s = model.ContainerStatus{
				Container: name, Service: as.Service, Host: as.Host, IP: as.IP, MAC: as.MAC,
				Netns: naming.ContainerNetns(c.Name, as.Host, name), State: "pending", Health: model.HealthStarting,
				Message: "its host has not reported it yet",
			}
		}
		out.Containers = append(out.Containers, s)
	}
	out.Changes = serviceChanges(snap)
	a.addStatusView(&out, view)
	sort.Slice(out.Containers, func(i, j int) bool { return out.Containers[i].Container < out.Containers[j].Container })
	out.VIPs = a.vipStatus(ctx, snap.Spec)
	if !view.stale {
		out.Faults = a.faultStatus(ctx)
	}
	writeJSON(w, http.StatusOK, out)
}

// memberStates asks every manager's etcd member, in parallel, whether it is
// the leader; a member that does not answer within memberTimeout is down.
func (a *Agent) memberStates(ctx context.Context, c *spec.Cluster) map[string]string {
	out := map[string]string{}
	st := a.store()
	managers := c.Managers()
	if st == nil {
		for _, h := range managers {
			out[h.Name] = "unknown"
		}
		return out
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range managers {
		wg.Go(func() {
			ep := store.ClientURL(h)
			mctx, cancel := context.WithTimeout(ctx, memberTimeout)
			ms, err := st.MemberStatus(mctx, ep)
			cancel()
			state := "follower"
			switch {
			case err != nil:
				state = "down"
			case !ms.HasLeader:
				state = "no-leader"
			case ms.IsLeader:
				state = "leader"
			}
			mu.Lock()
			out[h.Name] = state
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (a *Agent) handleSpec(w http.ResponseWriter, r *http.Request) {
	st := a.store()
	if st == nil {
		writeError(w, http.StatusServiceUnavailable, errNotReady)
		return
	}
	c, err := st.Spec(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"spec": c})
}

func (a *Agent) handleLogs(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("container")
	if !isContainerName(name) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%q is not a container name: use SERVICE-N as weft ps shows it", name))
		return
	}
	path := a.rt.LogPath(a.cfg.Cluster, a.self.Name, name)
	if _, err := os.Stat(path); err != nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("container %s has no log on host %s", name, a.self.Name))
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	if r.URL.Query().Get("follow") == "" {
		// The current file only: older generations are path.1, path.2...
		if f, err := os.Open(path); err == nil {
			defer f.Close()
			_, _ = io.Copy(w, f)
		}
		return
	}
	flush := func() {}
	if fl, ok := w.(http.Flusher); ok {
		flush = fl.Flush
	}
	// Follows the log across rotations (container-init rotates it by size).
	_ = logrotate.Follow(r.Context(), path, w, flush, 200*time.Millisecond)
}

// selfRSS reads this process's resident set size from /proc.
func selfRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// isContainerName reports whether name can be a container's name (a service
// name and an index: lower-case letters, digits and '-', starting with a
// letter), so that a name from a request can never reach outside the
// containers' state directory ("../x").
func isContainerName(name string) bool {
	if name == "" || len(name) > 80 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
