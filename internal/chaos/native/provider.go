package native

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/fault"
	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/pki"
	"github.com/weft-dev/weft/internal/store"
)

// Provider is the weft provider of one run.
type Provider struct {
	Cluster Cluster
	Exe     string    // the weft binary (helper processes)
	Out     io.Writer // progress lines; nil for none

	mu     sync.Mutex
	st     *store.Store
	faults []*active
}

type active struct {
	rec      fault.Record
	start    time.Time
	end      time.Time // when it actually ended
	ended    bool
	timer    *time.Timer
	endErr   error
	doneOnce sync.Once
	done     chan struct{}
}

// Window is one fault's time in effect, for the timeline.
type Window struct {
	Label      string
	Start, End time.Time
}

func (p *Provider) logf(format string, args ...any) {
	if p.Out != nil {
		fmt.Fprintf(p.Out, "[%s]   %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

func (p *Provider) env() fault.Env {
	return fault.Env{StateRoot: p.Cluster.StateRoot, Exe: p.Exe, Lab: &lab.Lab{StateRoot: p.Cluster.StateRoot},
		Pid: func(ctx context.Context, container string) (int, error) {
			st, err := p.Cluster.Status(ctx)
			if err != nil {
				return 0, err
			}
			for _, c := range st.Containers {
				if c.Container == container {
					return c.Pid, nil
				}
			}
			return 0, fmt.Errorf("no container %s", container)
		}}
}

// store connects (once) through the lab router's namespace: it reaches
// every host's subnet and no fault ever touches it, so the runner keeps its
// store while it cuts, crashes or partitions hosts.
func (p *Provider) store(ctx context.Context) (*store.Store, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st != nil {
		return p.st, nil
	}
	router := naming.RouterNetns(p.Cluster.Spec.Name)
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return DialIn(ctx, router, addr) }
	creds, err := pki.CLIFiles(p.Cluster.StateRoot, p.Cluster.Spec.Name).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("connecting to the store of %s: %w", p.Cluster.Spec.Name, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := store.ConnectVia(cctx, dial, store.ClientURLs(p.Cluster.Spec), creds, p.Cluster.Spec.Name)
	if err != nil {
		return nil, fmt.Errorf("connecting to the store of %s: %w", p.Cluster.Spec.Name, err)
	}
	p.st = st
	return st, nil
}

// Close ends the store connection.
func (p *Provider) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st != nil {
		p.st.Close()
		p.st = nil
	}
}

// Run runs one weft activity.
func (p *Provider) Run(ctx context.Context, prov map[string]any) (any, error) {
	fn, _ := prov["func"].(string)
	args, _ := prov["arguments"].(map[string]any)
	if args == nil {
		args = map[string]any{}
	}
	if _, ok := probeFuncs[fn]; ok {
		return p.probe(ctx, fn, args)
	}
	if fn == "end-faults" {
		return p.EndAll(ctx), nil
	}
	rec, err := p.record(ctx, fn, args)
	if err != nil {
		return nil, err
	}
	a, err := p.apply(ctx, rec)
	if err != nil {
		return nil, err
	}
	if wait, _ := args["wait"].(bool); wait && fault.Lasting(rec.Kind) {
		select {
		case <-a.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return describe(a), nil
}

func describe(a *active) map[string]any {
	out := map[string]any{
		"fault": a.rec.ID, "kind": a.rec.Kind, "target": a.rec.Target, "mechanism": a.rec.Mechanism,
		"start": a.start.UTC().Format(time.RFC3339Nano), "expires": a.rec.Expires.UTC().Format(time.RFC3339Nano),
	}
	if a.ended {
		out["ended"] = a.end.UTC().Format(time.RFC3339Nano)
		if a.endErr != nil {
			out["end_error"] = a.endErr.Error()
		}
	}
	return out
}

// apply writes the record to the store, applies it, writes it again with
// what applying learnt (helper pids), and schedules its end at expiry.
func (p *Provider) apply(ctx context.Context, rec *fault.Record) (*active, error) {
	st, err := p.store(ctx)
	if err != nil {
		return nil, err
	}
	put := func() error {
		body, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return st.PutFault(pctx, store.FaultRecord{ID: rec.ID, Kind: rec.Kind, Expires: rec.Expires, Body: body})
	}
	// The fault's time starts now, not when its targets were looked up.
	d := rec.Expires.Sub(rec.Created)
	rec.Created = time.Now()
	rec.Expires = rec.Created.Add(d)
	if err := put(); err != nil {
		return nil, fmt.Errorf("recording fault before applying it (nothing applied): %w", err)
	}
	a := &active{rec: *rec, start: time.Now(), done: make(chan struct{})}
	if err := fault.Apply(ctx, p.env(), rec); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = fault.Remove(rctx, p.env(), rec)
		_ = st.DeleteFault(rctx, rec.ID, 0)
		cancel()
		return nil, err
	}
	a.rec = *rec
	if err := put(); err != nil {
		p.logf("warning: fault %s applied but its helper pids are not in the store: %v", rec.ID, err)
	}
	p.logf("fault %s: %s on %s for %s (%s)", rec.ID, rec.Kind, rec.Target, rec.Expires.Sub(rec.Created).Round(time.Millisecond), rec.Mechanism)
	p.mu.Lock()
	p.faults = append(p.faults, a)
	p.mu.Unlock()
	if !fault.Lasting(rec.Kind) {
		a.ended, a.end = true, a.start
		a.doneOnce.Do(func() { close(a.done) })
		return a, nil
	}
	a.timer = time.AfterFunc(time.Until(rec.Expires), func() { p.end(context.Background(), a) })
	return a, nil
}

// end removes one fault (once) and deletes its record.
func (p *Provider) end(ctx context.Context, a *active) {
	a.doneOnce.Do(func() {
		if a.timer != nil {
			a.timer.Stop()
		}
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		err := fault.Remove(rctx, p.env(), &a.rec)
		p.mu.Lock()
		a.ended, a.end, a.endErr = true, time.Now(), err
		st := p.st
		p.mu.Unlock()
		if err != nil {
			p.logf("fault %s: ending it failed (agents retry at expiry): %v", a.rec.ID, err)
		} else {
			p.logf("fault %s ended (%s on %s)", a.rec.ID, a.rec.Kind, a.rec.Target)
			if st != nil {
				if err := deleteRecord(rctx, st, a.rec.ID); err != nil {
					p.logf("fault %s: its record stays in the store until the agents' sweep at expiry: %v", a.rec.ID, err)
				}
			}
		}
		close(a.done)
	})
}

// deleteRecord deletes a fault's record, trying again while ctx lasts: a
// store busy for a moment must not leave the record until its expiry.
func deleteRecord(ctx context.Context, st *store.Store, id string) error {
	for {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := st.DeleteFault(dctx, id, 0)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deleting fault record %s: %w", id, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// EndAll ends every fault of this run still in effect and reports them all.
func (p *Provider) EndAll(ctx context.Context) []map[string]any {
	p.mu.Lock()
	list := append([]*active(nil), p.faults...)
	p.mu.Unlock()
	var out []map[string]any
	for _, a := range list {
		p.end(ctx, a)
		p.mu.Lock()
		out = append(out, describe(a))
		p.mu.Unlock()
	}
	return out
}

// WaitFaults waits until every fault applied so far has ended (at its
// expiry at the latest), or ctx ends.
func (p *Provider) WaitFaults(ctx context.Context) {
	p.mu.Lock()
	list := append([]*active(nil), p.faults...)
	p.mu.Unlock()
	for _, a := range list {
		select {
		case <-a.done:
		case <-ctx.Done():
			return
		}
	}
}

// Windows are the faults' times in effect (an unended one up to now).
func (p *Provider) Windows() []Window {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Window
	for _, a := range p.faults {
		end := a.end
		if !a.ended {
			end = time.Now()
		}
		out = append(out, Window{Label: a.rec.Kind + " " + a.rec.Target, Start: a.start, End: end})
	}
	return out
}

// record builds a fault's record: kind, parameters and resolved parts.
func (p *Provider) record(ctx context.Context, fn string, args map[string]any) (*fault.Record, error) {
	status, err := p.Cluster.Status(ctx)
	if err != nil {
		return nil, err
	}
	return buildRecord(targets{spec: p.Cluster.Spec, status: status}, p.Cluster.StateRoot, fn, args, time.Now())
}

// buildRecord resolves a fault's targets into its record. It is pure.
func buildRecord(t targets, stateRoot, fn string, args map[string]any, now time.Time) (*fault.Record, error) {
	var err error
	r := &fault.Record{ID: fault.NewID(), Kind: fn, Cluster: t.spec.Name, Created: now, Expires: now}
	if d, ok := args["duration"]; ok {
		dur, err := duration(d)
		if err != nil || dur <= 0 {
			return nil, fmt.Errorf("duration %v: a duration such as 10s", d)
		}
		r.Expires = now.Add(dur)
	}
	cname := t.spec.Name
	str := func(k string) string { s, _ := args[k].(string); return s }
	switch fn {
	case fault.KillContainer, fault.KillService:
		name := str("container")
		if fn == fault.KillService {
			name = str("service")
		}
		tg, err := t.resolve(name)
		if err != nil || tg.host != "" {
			return nil, fmt.Errorf("%s: %q is not a service or container", fn, name)
		}
		r.Target, r.Mechanism = name, "SIGKILL of the container's process"
		for _, c := range tg.containers {
			r.Parts = append(r.Parts, fault.Part{Container: c.Container, Host: c.Host})
		}
	case fault.KillAgent, fault.CutHost, fault.CrashHost:
		host := str("host")
		if host == "" && fn == fault.CrashHost {
			tg, err := t.resolve(str("container"))
			if err != nil || len(tg.containers) == 0 {
				return nil, fmt.Errorf("crash-host: %v", err)
			}
			host = tg.containers[0].Host
		}
		if _, ok := t.spec.HostByName(host); !ok {
			return nil, fmt.Errorf("%s: %q is not a host of %s", fn, host, cname)
		}
		r.Target = host
		r.Parts = []fault.Part{{Host: host}}
		r.Mechanism = map[string]string{fault.KillAgent: "SIGKILL of the agent; restarted when the fault ends",
			fault.CutHost: "the host's link on the lab router set down", fault.CrashHost: "cgroup freezer on every process of the host + its link down"}[fn]
	case fault.Partition:
		groups, _ := args["groups"].([]any)
		if len(groups) != 2 {
			return nil, fmt.Errorf("partition: groups must be two lists of hosts")
		}
		_, a, err := t.hostAddrs(strList(groups[0]))
		if err != nil {
			return nil, err
		}
		_, b, err := t.hostAddrs(strList(groups[1]))
		if err != nil {
			return nil, err
		}
		r.Target = fmt.Sprintf("%v | %v", a, b)
		r.Mechanism = "nftables drop in the hosts' namespaces (underlay addresses, both directions)"
		for _, side := range [][2][]string{{a, b}, {b, a}} {
			var peers []netip.Addr
			for _, h := range side[1] {
				peers = append(peers, t.hostAddr(h))
			}
			for _, h := range side[0] {
				r.Parts = append(r.Parts, fault.Part{Netns: naming.HostNetns(cname, h), Host: h, Peers: sortAddrs(peers), Inbound: true})
			}
		}
	case fault.Loss, fault.Latency:
		from := strList(args["from"])
		if fn == fault.Latency {
			from = strList(args["target"])
		}
		if err := packetParts(t, r, from, strList(args["to"])); err != nil {
			return nil, err
		}
		if fn == fault.Loss {
			r.Percent = int(args["percent"].(int64))
			r.Mechanism = "nftables numgen random drop"
		} else {
			r.Delay, _ = duration(args["delay"])
			// netem where the kernel has it, else the delay stage: decided
			// when applied, and written into the record.
			for i := range r.Parts {
				r.Parts[i].Queue = fault.QueueNumber(r.ID)
				r.Parts[i].Dev = naming.ContainerIface
				if r.Parts[i].Container == "" {
					r.Parts[i].Dev = naming.HostUnderlayIface
				}
			}
		}
	case fault.Bandwidth:
		name := str("target")
		tg, err := t.resolve(name)
		if err != nil {
			return nil, err
		}
		if r.RateBytes, err = Rate(args["rate"]); err != nil {
			return nil, err
		}
		r.Target, r.Mechanism = name, "tc tbf (both directions of each container link; egress of a host's underlay link)"
		if tg.host != "" {
			r.Parts = []fault.Part{{Netns: naming.HostNetns(cname, tg.host), Dev: naming.HostUnderlayIface, Host: tg.host}}
		}
		for _, c := range tg.containers {
			r.Parts = append(r.Parts,
				fault.Part{Netns: c.Netns, Dev: naming.ContainerIface, Container: c.Container},
				fault.Part{Netns: naming.HostNetns(cname, c.Host), Dev: naming.HostVeth(c.Container), Container: c.Container, Host: c.Host})
		}
	case fault.FillDisk:
		name := str("container")
		svc, ok := t.spec.ServiceByName(serviceOf(t, name))
		if !ok || len(svc.Volumes) == 0 {
			return nil, fmt.Errorf("fill-disk: container %q has no volume to fill", name)
		}
		vol := str("volume")
		if vol == "" {
			vol = svc.Volumes[0].Name
		}
		if r.Bytes, err = Size(args["bytes"]); err != nil {
			return nil, err
		}
		r.Target, r.Mechanism = name+":"+vol, "fallocate of one file in the container's volume"
		r.Parts = []fault.Part{{Container: name, Path: filepath.Join(naming.VolumeDir(stateRoot, cname, name, vol), ".weft-fault-"+r.ID)}}
	case fault.BurnCPU:
		name := str("container")
		if _, err := t.resolve(name); err != nil {
			return nil, err
		}
		r.Workers = 1
		if w, ok := args["workers"].(int64); ok && w > 0 && w <= 16 {
			r.Workers = int(w)
		}
		r.Target, r.Mechanism = name, "spinning threads in the container's cgroups"
		r.Parts = []fault.Part{{Container: name}}
	default:
		return nil, fmt.Errorf("unknown weft fault %q", fn)
	}
	return r, nil
}

func serviceOf(t targets, container string) string {
	for _, c := range t.status.Containers {
		if c.Container == container {
			return c.Service
		}
	}
	return ""
}

// packetParts places a packet fault: on containers (their namespaces,
// matching the overlay addresses of `to`) or on hosts (their namespaces,
// matching the underlay addresses of `to`).
func packetParts(t targets, r *fault.Record, from, to []string) error {
	if len(from) == 0 {
		return errors.New("no source given (from / target)")
	}
	r.Target = fmt.Sprintf("%v", from)
	if len(to) > 0 {
		r.Target += fmt.Sprintf(" -> %v", to)
	}
	for _, name := range from {
		tg, err := t.resolve(name)
		if err != nil {
			return err
		}
		if tg.host != "" {
			var peers []netip.Addr
			if len(to) > 0 {
				if peers, _, err = t.hostAddrs(to); err != nil {
					return err
				}
			}
			r.Parts = append(r.Parts, fault.Part{Netns: naming.HostNetns(r.Cluster, tg.host), Host: tg.host, Peers: peers})
			continue
		}
		var peers []netip.Addr
		if len(to) > 0 {
			if peers, err = t.containerAddrs(to); err != nil {
				return err
			}
		}
		for _, c := range tg.containers {
			r.Parts = append(r.Parts, fault.Part{Netns: c.Netns, Container: c.Container, Peers: peers})
		}
	}
	return nil
}
