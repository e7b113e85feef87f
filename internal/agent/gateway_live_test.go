package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/gateway"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/shift"
	"github.com/weft-dev/weft/internal/spec"
)

func TestLiveGatewayWeights(t *testing.T) {
	c := &spec.Cluster{
		Services: []spec.Service{{Name: "v1", Port: 8000}, {Name: "v2", Port: 8001}},
		Routes:   []spec.Route{{Prefix: "/api", Service: "v1"}, {Prefix: "/", Service: "v1"}},
	}
	rec := func(route string, ws ...model.Weight) model.RouteWeights {
		return model.RouteWeights{Route: route, Backends: ws}
	}
	for _, tc := range []struct {
		name string
		live map[string]model.RouteWeights
		want map[string][]gateway.Backend
	}{
		{"none: every route takes the file's", nil, map[string][]gateway.Backend{}},
		{"a record, with the services' ports", map[string]model.RouteWeights{
			"/api": rec("/api", model.Weight{Service: "v1", Weight: 75}, model.Weight{Service: "v2", Weight: 25}),
		}, map[string][]gateway.Backend{"/api": {{Service: "v1", Port: 8000, Weight: 75}, {Service: "v2", Port: 8001, Weight: 25}}}},
		{"a route the file lost is left out", map[string]model.RouteWeights{
			"/old": rec("/old", model.Weight{Service: "v1", Weight: 1}),
		}, map[string][]gateway.Backend{}},
		{"a service the file lost leaves its route on the file's weights", map[string]model.RouteWeights{
			"/api": rec("/api", model.Weight{Service: "v3", Weight: 100}, model.Weight{Service: "v1", Weight: 0}),
		}, map[string][]gateway.Backend{}},
	} {
		if got := liveGatewayWeights(c, tc.live); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestLiveRecord(t *testing.T) {
	c := &spec.Cluster{Routes: []spec.Route{{Prefix: "/api", Backends: []spec.RouteBackend{{Service: "v1", Weight: 100}, {Service: "v2", Weight: 0}}}}}
	now := time.Unix(1000, 0)
	from := []model.Weight{{Service: "v1", Weight: 100}, {Service: "v2", Weight: 0}}
	sh := model.Shift{ID: "x", ShiftSettings: model.ShiftSettings{Route: "/api", To: "v2", Steps: []int{10, 100}}, From: from, FromFile: true}
	earlier := model.RouteWeights{Route: "/api", Backends: []model.Weight{{Service: "v1", Weight: 50}, {Service: "v2", Weight: 50}}}
	for _, tc := range []struct {
		state    string
		fromFile bool
		present  model.RouteWeights
		want     string // "" for no record
	}{
		{model.ShiftPending, true, model.RouteWeights{}, ""},
		{model.ShiftPending, false, earlier, "v1=50 v2=50"},
		{model.ShiftRunning, true, model.RouteWeights{}, "v1=90 v2=10"},
		{model.ShiftPromoted, true, model.RouteWeights{}, "v1=0 v2=100"},
		{model.ShiftRolledBack, true, earlier, ""},
		{model.ShiftRolledBack, false, earlier, "v1=100 v2=0"},
	} {
		s := sh
		s.State, s.FromFile = tc.state, tc.fromFile
		got := liveRecord(c, s, tc.present, now)
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("%s (from file %v): record %+v, want none", tc.state, tc.fromFile, got)
		case tc.want != "" && (got == nil || shift.FormatWeights(got.Backends) != tc.want):
			t.Errorf("%s (from file %v): record %+v, want %s", tc.state, tc.fromFile, got, tc.want)
		}
		if got != nil && tc.state != model.ShiftPending && shift.FormatWeights(got.File) != "v1=100 v2=0" {
			t.Errorf("%s: the record does not keep the file's weights: %+v", tc.state, got.File)
		}
	}
}
