package image

import (
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestArgvFollowsDocker(t *testing.T) {
	img := Image{Config: v1.Config{Entrypoint: []string{"/app/web"}, Cmd: []string{"-listen", ":80"}}}
	for _, tc := range []struct {
		name            string
		entrypoint, cmd []string
		want            []string
	}{
		{"image's", nil, nil, []string{"/app/web", "-listen", ":80"}},
		{"file's command replaces cmd", nil, []string{"-listen", ":8080"}, []string{"/app/web", "-listen", ":8080"}},
		{"file's entrypoint drops the image's cmd", []string{"/bin/sh"}, nil, []string{"/bin/sh"}},
		{"both", []string{"/bin/sh", "-c"}, []string{"echo hi"}, []string{"/bin/sh", "-c", "echo hi"}},
	} {
		if got := img.Argv(tc.entrypoint, tc.cmd); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := (Image{Config: v1.Config{Cmd: []string{"sh"}}}).Argv(nil, nil); !slices.Equal(got, []string{"sh"}) {
		t.Errorf("cmd only: %q", got)
	}
}

func TestEnvAndDigestOfRootFS(t *testing.T) {
	env := Image{Config: v1.Config{Env: []string{"PATH=/usr/bin:/bin", "EMPTY=", "A=b=c"}}}.Env()
	if env["PATH"] != "/usr/bin:/bin" || env["A"] != "b=c" || len(env) != 3 {
		t.Errorf("env = %v", env)
	}
	hex := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if got := DigestOfRootFS("/var/lib/weft/c/hosts/h/images/" + hex + "/rootfs"); got != "sha256:"+hex {
		t.Errorf("DigestOfRootFS = %q", got)
	}
	if got := DigestOfRootFS("/usr"); got != "" {
		t.Errorf("DigestOfRootFS(/usr) = %q", got)
	}
}
