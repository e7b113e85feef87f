package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/weft-dev/weft/internal/gateway"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// gatewayTick is how often the agent sets its gateways' live weights again
// (a restarted gateway starts from the file's) and, while a shift runs,
// publishes their counters.
const gatewayTick = 500 * time.Millisecond

// gatewayRefresh is how often the agent sets weights that have not
// changed again.
const gatewayRefresh = 5 * time.Second

// pushed is what a gateway process was last set to.
type pushed struct {
	want string // the weights, as JSON
	pid  int
	at   time.Time
}

// gatewayView is what the gateway loop follows of the store.
type gatewayView struct {
	spec   *spec.Cluster
	live   map[string]model.RouteWeights
	shifts map[string]model.Shift
}

// gatewayLoop keeps this host's gateways on the routes' live weights (the
// store's weights/ records over the file's), within a tick of a change,
// and publishes each gateway's counters of the new backend while a shift
// of its route runs. It talks to each gateway's admin API on 127.0.0.1
// inside the gateway's network namespace. It reads the file, the live
// weights and the shifts from the agent's mirror of the store every tick
// (followed.go), not from etcd.
func (a *Agent) gatewayLoop(ctx context.Context, st *store.Store) error {
	tick := time.NewTicker(gatewayTick)
	defer tick.Stop()
	sent := map[string]pushed{} // by container
	for {
		if view := followedGatewayView(st); view.spec != nil {
			a.tendGateways(ctx, st, view, sent)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// followedGatewayView is the gateway loop's view of the agent's mirror;
// its spec is nil before the mirror has loaded or before the first apply.
func followedGatewayView(st lastViewer) gatewayView {
	snap, _, ok := st.LastView()
	if !ok {
		return gatewayView{}
	}
	return gatewayView{spec: snap.Spec, live: snap.Weights, shifts: snap.Shifts}
}

// tendGateways sets every local gateway's weights and, while shifts run,
// publishes its counters of their new backends.
// A gateway is set when the weights changed, when its process changed (a
// restarted gateway starts from the file's weights), when the agent has
// not set it yet (it may hold an earlier agent's weights), and every
// gatewayRefresh.
func (a *Agent) tendGateways(ctx context.Context, st *store.Store, v gatewayView, sent map[string]pushed) {
	want := liveGatewayWeights(v.spec, v.live)
	wantJSON, _ := json.Marshal(want)
	type local struct {
		as  model.Assignment
		pid int
	}
	a.mu.Lock()
	var locals []local
	for _, run := range a.containers {
		if svc, ok := v.spec.ServiceByName(run.assign.Service); ok && isGateway(svc) {
			locals = append(locals, local{run.assign, run.snapshot().Pid})
		}
	}
	a.mu.Unlock()
	seen := map[string]bool{}
	for _, l := range locals {
		as := l.as
		seen[as.Container] = true
		svc, _ := v.spec.ServiceByName(as.Service)
		adm, err := a.gatewayAdmin(v.spec, svc, as)
		if err != nil {
			a.log.Warn("gateway admin address", "container", as.Container, "err", err)
			continue
		}
		last := sent[as.Container]
		if last.want != string(wantJSON) || last.pid != l.pid || time.Since(last.at) > gatewayRefresh {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			err := adm.call(cctx, http.MethodPut, gateway.AdminPathWeights, gateway.WeightsRequest{Routes: want}, nil)
			cancel()
			if err != nil {
				a.log.Debug("setting gateway weights", "container", as.Container, "err", err)
				delete(sent, as.Container)
			} else {
				sent[as.Container] = pushed{want: string(wantJSON), pid: l.pid, at: time.Now()}
			}
		}
		for _, route := range slices.Sorted(maps.Keys(v.shifts)) {
			sh := v.shifts[route]
			if model.ShiftDone(sh.State) {
				continue
			}
			var s gateway.BackendSample
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			q := url.Values{"route": {sh.Route}, "service": {sh.To}}
			err := adm.call(cctx, http.MethodGet, gateway.AdminPathBackend+"?"+q.Encode(), nil, &s)
			if err == nil {
				err = st.PutGatewaySample(cctx, model.GwSample{Gateway: as.Container, Host: a.self.Name, Started: s.Started, At: time.Now().UTC(),
					Route: s.Route, Service: s.Service, Codes: s.Codes, Bounds: s.Bounds, Buckets: s.Buckets})
			}
			cancel()
			if err != nil {
				a.log.Debug("publishing gateway counters", "container", as.Container, "route", route, "err", err)
			}
		}
	}
	for c := range sent {
		if !seen[c] {
			delete(sent, c)
		}
	}
}

// liveGatewayWeights are the weights to set in the gateways: each route
// with a live record that the file still has, its backends with their
// services' ports. Every other route takes the file's weights.
func liveGatewayWeights(c *spec.Cluster, live map[string]model.RouteWeights) map[string][]gateway.Backend {
	out := map[string][]gateway.Backend{}
	for route, w := range live {
		if !slices.ContainsFunc(c.Routes, func(r spec.Route) bool { return r.Prefix == route }) {
			continue
		}
		var bs []gateway.Backend
		for _, b := range w.Backends {
			svc, ok := c.ServiceByName(b.Service)
			if !ok {
				bs = nil
				break
			}
			bs = append(bs, gateway.Backend{Service: b.Service, Port: svc.Port, Weight: b.Weight})
		}
		if len(bs) > 0 {
			out[route] = bs
		}
	}
	return out
}

// gatewayAdminClient calls one gateway's admin API from inside its network
// namespace.
type gatewayAdminClient struct {
	netns, addr string
}

func (a *Agent) gatewayAdmin(c *spec.Cluster, svc spec.Service, as model.Assignment) (gatewayAdminClient, error) {
	text, err := gatewayConfig(c, svc)
	if err != nil {
		return gatewayAdminClient{}, err
	}
	cfg, err := gateway.ParseConfig([]byte(text))
	if err != nil {
		return gatewayAdminClient{}, err
	}
	return gatewayAdminClient{netns: naming.ContainerNetns(c.Name, a.self.Name, as.Container), addr: cfg.AdminListen()}, nil
}

func (g gatewayAdminClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+g.addr+path, rd)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nsthread.DialNamed(ctx, g.netns, &net.Dialer{Timeout: time.Second}, network, addr)
		},
	}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
