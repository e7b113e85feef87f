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
	v := BuildView(st, routes, nil)
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
	if !reflect.DeepEqual(v.Routes, routes) {
		t.Errorf("routes %+v", v.Routes)
	}
}
