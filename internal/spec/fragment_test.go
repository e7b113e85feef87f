package spec

import (
	"errors"
	"testing"
)

func TestDecodeTop(t *testing.T) {
	c, ps := DecodeTop([]byte("name: cmp-x\noverlay: {vni: 7}\nhosts: [{name: host1, subnet: a}]\n"))
	if ps != nil {
		t.Fatalf("problems: %v", ps)
	}
	if c.Name != "cmp-x" || c.Overlay.VNI != 7 || len(c.Hosts) != 1 || c.Overlay.Port != 0 {
		t.Errorf("got %+v (defaults must not be applied yet)", c)
	}
	for _, bad := range []struct{ data, field string }{
		{"services: {web: {command: [x]}}\n", "services"},
		{"netwrok: {}\n", "netwrok"},
		{"overlay: {vni: zero}\n", "overlay.vni"},
	} {
		if _, ps := DecodeTop([]byte(bad.data)); !ps.Has(bad.field) {
			t.Errorf("%q: no problem named %s: %v", bad.data, bad.field, ps)
		}
	}
}

func TestFinishDefaultsAndValidates(t *testing.T) {
	c, _ := DecodeTop([]byte("name: cmp-x\nnetwork: {cidr: 192.168.0.0/16, subnets: {a: 192.168.1.0/24}}\noverlay: {vni: 7}\nhosts: [{name: host1, subnet: a}]\n"))
	c.Services = []Service{{Name: "web", Image: "web:v1", Replicas: 1}}
	done, err := Finish(c)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if done.Overlay.CIDR != DefaultOverlayCIDR || done.Services[0].Restart != RestartAlways {
		t.Errorf("defaults not applied: %+v", done)
	}
	c.Services = append(c.Services, Service{Name: "api", Replicas: 1, Host: "host9"})
	_, err = Finish(c)
	var ps Problems
	if !errors.As(err, &ps) || !ps.Has("services.api.host") {
		t.Errorf("got %v, want a problem on services.api.host", err)
	}
}
