package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// DefaultInterval is how often the status is read. A change reaches the
// pages within about one interval plus the time the agents take to answer.
const DefaultInterval = 300 * time.Millisecond

// statusTimeout bounds one read of the status: api.ClusterStatus returns
// within api.AgentTimeout whatever is down.
const statusTimeout = api.AgentTimeout + time.Second

// poller reads the status source, makes the view, and publishes it when it
// differs from the last one.
type poller struct {
	src Source
	hub *hub
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	status *api.Status // last status read, nil before the first
	routes []spec.Route
	shifts api.ShiftsAnswer // Shifts nil before the first read
	events []Event
	view   View
	sent   []byte
}

// run polls every interval until ctx ends.
func (p *poller) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step reads the source once and publishes the view if it changed. It
// reports whether it published.
func (p *poller) step(ctx context.Context) bool {
	sctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	// The applied file and the shifts are read alongside the status, not
	// after it: a change waits for one round of answers only.
	var c *spec.Cluster
	var shifts api.ShiftsAnswer
	var serr, sherr error
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		c, serr = p.src.Spec(sctx)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		shifts, sherr = p.src.Shifts(sctx)
	}()
	st, err := p.src.Status(sctx)
	<-done
	<-done
	if ctx.Err() != nil {
		return false
	}

	p.mu.Lock()
	var v View
	switch {
	case err != nil:
		// Keep drawing the last view, with the reason nothing is fresh.
		v = p.view
		v.Error = "reading the cluster's status: " + err.Error()
	default:
		if serr == nil {
			p.routes = routesOf(c) // else keep the routes last read
		} else {
			p.log.Debug("reading the applied file", "err", serr)
		}
		if p.status == nil {
			p.events = prepend(nil, History(st))
		} else {
			p.events = prepend(p.events, Diff(*p.status, st, p.now()))
		}
		if sherr == nil {
			p.events = prepend(p.events, ShiftEvents(p.shifts.Shifts, shifts.Shifts))
			p.shifts = shifts // else keep the shifts last read
		} else {
			p.log.Debug("reading the shifts", "err", sherr)
		}
		p.status = &st
		v = BuildView(st, p.routes, p.shifts, p.events)
		p.view = v
	}
	b, merr := json.Marshal(v)
	if merr != nil || bytes.Equal(b, p.sent) {
		p.mu.Unlock()
		return false
	}
	p.sent = b
	p.mu.Unlock()
	p.hub.publish(b)
	return true
}

// container is the last status of a container, and whether there is one.
func (p *poller) container(name string) (model.ContainerStatus, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == nil {
		return model.ContainerStatus{}, false
	}
	for _, c := range p.status.Containers {
		if c.Container == name {
			return c, true
		}
	}
	return model.ContainerStatus{}, false
}
