package ui

import (
	"reflect"
	"testing"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

func TestBuildView(t *testing.T) {
	st := api.Status{
		Cluster: "c1",
		Hosts: []api.HostStatus{
			{Name: "host1", Address: "192.168.1.10", Agent: "up"},
			{Name: "host2", Address: "192.168.2.10", Agent: "down"},
			{Name: "host3", Address: "192.168.3.10", Agent: "up"},
		},
		Containers: []model.ContainerStatus{
			ct("web-2", "host1", "running", 0),
			ct("web-1", "host1", "running", 0),
			ct("db-1", "host2", "running", 0),
			{Container: "api-1", Service: "api", Host: "host3", State: "pending"}, // no address yet
		},
	}
	routes := []spec.Route{{Prefix: "/", Service: "web"}}
	v := BuildView(st, routes, api.ShiftsAnswer{}, nil)
	if len(v.Hosts) != 3 {
		t.Fatalf("hosts: %+v", v.Hosts)
	}
	h1, h2, h3 := v.Hosts[0], v.Hosts[1], v.Hosts[2]
	if h1.Down || !h2.Down || h3.Down {
		t.Errorf("down: host1 %v host2 %v host3 %v, want only host2", h1.Down, h2.Down, h3.Down)
	}
	if h1.VTEP != "192.168.1.10" {
		t.Errorf("host1 VTEP %q", h1.VTEP)
	}
	// host1 knows db-1 (host2); api-1 has no address, so no entry anywhere.
	if h1.Peers != 1 || h1.RemoteVTEPs != 1 {
		t.Errorf("host1 peers %d over %d VTEPs, want 1 over 1", h1.Peers, h1.RemoteVTEPs)
	}
	if h3.Peers != 3 || h3.RemoteVTEPs != 2 {
		t.Errorf("host3 peers %d over %d VTEPs, want 3 over 2", h3.Peers, h3.RemoteVTEPs)
	}
	if got := []string{h1.Containers[0].Container, h1.Containers[1].Container}; !reflect.DeepEqual(got, []string{"web-1", "web-2"}) {
		t.Errorf("host1 containers %v, want sorted web-1, web-2", got)
	}
	want := []ServiceView{
		{Name: "api", Hosts: []string{"host3"}, Ready: 0, Instances: 1},
		{Name: "db", Hosts: []string{"host2"}, Ready: 1, Instances: 1},
		{Name: "web", Hosts: []string{"host1"}, Ready: 2, Instances: 2},
	}
	if !reflect.DeepEqual(v.Services, want) {
		t.Errorf("services:\n got %+v\nwant %+v", v.Services, want)
	}
	if len(v.Routes) != 1 || !reflect.DeepEqual(v.Routes[0].Route, routes[0]) || v.Routes[0].LiveBy != "" {
		t.Errorf("routes %+v", v.Routes)
	}
}

func TestBuildViewLiveWeights(t *testing.T) {
	routes := []spec.Route{
		{Prefix: "/products", Backends: []spec.RouteBackend{{Service: "v1", Weight: 100}, {Service: "v2", Weight: 0}}},
		{Prefix: "/", Service: "web"},
	}
	shifts := api.ShiftsAnswer{
		Weights: map[string]model.RouteWeights{"/products": {Route: "/products", By: "weft shift s1",
			Backends: []model.Weight{{Service: "v1", Weight: 75}, {Service: "v2", Weight: 25}}}},
		Shifts: map[string]model.Shift{"/products": {ID: "s1", ShiftSettings: model.ShiftSettings{Route: "/products", To: "v2", Steps: []int{10, 25, 50, 100}, Threshold: 2},
			State: model.ShiftRunning, Step: 1}},
	}
	v := BuildView(api.Status{}, routes, shifts, nil)
	want := []spec.RouteBackend{{Service: "v1", Weight: 75}, {Service: "v2", Weight: 25}}
	if !reflect.DeepEqual(v.Routes[0].Backends, want) || v.Routes[0].LiveBy != "weft shift s1" {
		t.Errorf("/products: %+v, want the live weights %+v by weft shift s1", v.Routes[0], want)
	}
	if v.Routes[1].LiveBy != "" || v.Routes[1].Service != "web" {
		t.Errorf("/: %+v, want the file's route", v.Routes[1])
	}
	if routes[0].Backends[0].Weight != 100 {
		t.Errorf("BuildView changed its input: %+v", routes[0])
	}
	wantShift := []ShiftView{{Route: "/products", To: "v2", State: model.ShiftRunning, Percent: 25, Threshold: 2}}
	if !reflect.DeepEqual(v.Shifts, wantShift) {
		t.Errorf("shifts:\n got %+v\nwant %+v", v.Shifts, wantShift)
	}
}
