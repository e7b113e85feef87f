// Package ui serves `weft ui`: one page that shows the running cluster and
// updates itself over Server-Sent Events, with actions (restart a
// container, read its logs) that go through the agents' API like the CLI's.
//
// One concern per file: view.go turns a status into what the page draws
// (pure), events.go finds what happened between two statuses (pure),
// hub.go pushes views to the open pages, poll.go watches the status source,
// source.go is that source (the agents), guard.go keeps other sites and
// other hosts out, server.go ties the routes together.
package ui

import (
	"cmp"
	"maps"
	"slices"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// View is everything the page draws, sent whole on every change.
type View struct {
	Cluster string `json:"cluster"`
	// Error is why no status could be read (every agent down, no cluster);
	// the rest is then the last view that could be made.
	Error       string     `json:"error,omitempty"`
	Stale       bool       `json:"stale,omitempty"`
	Unreachable []string   `json:"unreachable,omitempty"`
	Expected    int        `json:"expected"`
	Hosts       []HostView `json:"hosts"`
	// Services says where each service runs: service -> its containers.
	Services []ServiceView     `json:"services"`
	VIPs     []api.VIPStatus   `json:"vips,omitempty"`
	Routes   []RouteView       `json:"routes,omitempty"`
	Shifts   []ShiftView       `json:"shifts,omitempty"`
	Faults   []api.FaultStatus `json:"faults,omitempty"` // chaos faults in force
	Events   []Event           `json:"events,omitempty"` // newest first
}

// HostView is one host with its containers.
type HostView struct {
	api.HostStatus
	// Down: the host's agent is not registered (host crashed, cut off, or
	// its agent dead); its containers are as last reported.
	Down bool `json:"down"`
	// VTEP is the host's end of the VXLAN tunnels: its underlay address.
	VTEP string `json:"vtep"`
	// Peers is how many remote containers this host's vxlan device knows
	// (one FDB and one neighbour entry each), over RemoteVTEPs other hosts.
	Peers       int                     `json:"peers"`
	RemoteVTEPs int                     `json:"remote_vteps"`
	Containers  []model.ContainerStatus `json:"containers"`
}

// ServiceView is one service and where its containers run.
type ServiceView struct {
	Name      string   `json:"name"`
	Hosts     []string `json:"hosts"` // distinct, sorted
	Ready     int      `json:"ready"`
	Instances int      `json:"instances"`
}

// RouteView is a gateway route with the weights the gateways use now: the
// live weights (a traffic shift's) where a record has them, else the
// file's.
type RouteView struct {
	spec.Route
	LiveBy string `json:"live_by,omitempty"` // who set the live weights; "" when they are the file's
}

// ShiftView is a route's last traffic shift, in brief.
type ShiftView struct {
	Route     string `json:"route"`
	To        string `json:"to"`
	State     string `json:"state"`
	Percent   int    `json:"percent"` // To's weight at the current step
	Failed    int    `json:"failed"`
	Threshold int    `json:"threshold"`
	Message   string `json:"message,omitempty"`
}

// BuildView makes the page's view of a status, the applied routes, the
// shifts and live weights, and the events so far. It is pure: the same
// input gives the same view.
func BuildView(st api.Status, routes []spec.Route, shifts api.ShiftsAnswer, events []Event) View {
	v := View{
		Cluster: st.Cluster, Stale: st.Stale, Unreachable: st.Unreachable,
		Expected: st.Expected, VIPs: st.VIPs, Events: events, Faults: st.Faults,
	}
	for _, r := range routes {
		rv := RouteView{Route: r}
		if live, ok := shifts.Weights[r.Prefix]; ok && len(r.Backends) > 0 {
			rv.Backends = nil
			for _, w := range live.Backends {
				rv.Backends = append(rv.Backends, spec.RouteBackend{Service: w.Service, Weight: w.Weight})
			}
			rv.LiveBy = live.By
		}
		v.Routes = append(v.Routes, rv)
	}
	for _, route := range slices.Sorted(maps.Keys(shifts.Shifts)) {
		sh := shifts.Shifts[route]
		sv := ShiftView{Route: route, To: sh.To, State: sh.State, Failed: sh.Failed, Threshold: sh.Threshold, Message: sh.Message}
		if sh.Step >= 0 && sh.Step < len(sh.Steps) {
			sv.Percent = sh.Steps[sh.Step]
		}
		v.Shifts = append(v.Shifts, sv)
	}
	byHost := map[string][]model.ContainerStatus{}
	for _, c := range st.Containers {
		byHost[c.Host] = append(byHost[c.Host], c)
	}
	for _, h := range st.Hosts {
		hv := HostView{HostStatus: h, Down: h.Agent != "up", VTEP: h.Address, Containers: byHost[h.Name]}
		remote := map[string]bool{}
		for _, c := range st.Containers {
			if c.Host != h.Name && c.IP.IsValid() {
				hv.Peers++
				remote[c.Host] = true
			}
		}
		hv.RemoteVTEPs = len(remote)
		slices.SortFunc(hv.Containers, func(x, y model.ContainerStatus) int { return cmp.Compare(x.Container, y.Container) })
		v.Hosts = append(v.Hosts, hv)
	}
	// Containers whose host is not in the file (should not happen; shown
	// rather than hidden).
	for host, cs := range byHost {
		if !slices.ContainsFunc(st.Hosts, func(h api.HostStatus) bool { return h.Name == host }) {
			v.Hosts = append(v.Hosts, HostView{HostStatus: api.HostStatus{Name: host, Agent: "unknown"}, Down: true, Containers: cs})
		}
	}
	services := map[string]*ServiceView{}
	for _, c := range st.Containers {
		s := services[c.Service]
		if s == nil {
			s = &ServiceView{Name: c.Service}
			services[c.Service] = s
		}
		s.Instances++
		if c.Ready() {
			s.Ready++
		}
		if !slices.Contains(s.Hosts, c.Host) {
			s.Hosts = append(s.Hosts, c.Host)
		}
	}
	for _, s := range services {
		slices.Sort(s.Hosts)
		v.Services = append(v.Services, *s)
	}
	slices.SortFunc(v.Services, func(x, y ServiceView) int { return cmp.Compare(x.Name, y.Name) })
	return v
}

// routesOf is the gateway routes of an applied file, nil before the first.
func routesOf(c *spec.Cluster) []spec.Route {
	if c == nil {
		return nil
	}
	return c.Routes
}
