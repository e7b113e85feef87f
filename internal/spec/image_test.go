package spec

import (
	"slices"
	"strings"
	"testing"
)

func TestParseImage(t *testing.T) {
	for in, want := range map[string]ImageSource{
		"registry:5000/shop/web:v1":           {Transport: ImageRegistry, Ref: "registry:5000/shop/web:v1"},
		"docker-archive:./web.tar":            {Transport: ImageDockerArchive, Path: "./web.tar"},
		"docker-archive:/x/all.tar:shop/a:v2": {Transport: ImageDockerArchive, Path: "/x/all.tar", Ref: "shop/a:v2"},
		"oci:./layout":                        {Transport: ImageOCI, Path: "./layout"},
		"oci:./layout:v1":                     {Transport: ImageOCI, Path: "./layout", Ref: "v1"},
	} {
		got, err := ParseImage(in)
		if err != nil || got != want {
			t.Errorf("ParseImage(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%q written back as %q", in, got.String())
		}
	}
	for _, bad := range []string{"docker-archive:", "oci:", "Shop/Web:v1", "docker-archive:./a.tar:Bad Tag"} {
		if _, err := ParseImage(bad); err == nil {
			t.Errorf("ParseImage(%q) accepted", bad)
		}
	}
	if h := (ImageSource{Transport: ImageRegistry, Ref: "registry:5000/a:v1"}).RegistryHost(); h != "registry" {
		t.Errorf("RegistryHost = %q", h)
	}
}

// imageService is a service of an image, added to base.
const imageService = "  web:\n    image: docker-archive:./images/web.tar\n    port: 8080\n"

func TestImageServiceParses(t *testing.T) {
	c, err := Parse([]byte(edit(t, base, addService(imageService)...)), "/srv/lab")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	s, _ := c.ServiceByName("web")
	if s.Image != "docker-archive:/srv/lab/images/web.tar" || s.Command != nil {
		t.Errorf("image %q command %q: want the tarball's path made absolute, no command", s.Image, s.Command)
	}
	// An image's command names a program in the image: not made absolute.
	c, err = Parse([]byte(edit(t, base, addService("  web:\n    image: registry:5000/shop/web:v1\n    entrypoint: [/app/web]\n    command: [./serve]\n    depends_on: [registry]\n  registry:\n    command: [weft, registry]\n    port: 5000\n")...)), "/srv/lab")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	s, _ = c.ServiceByName("web")
	if !slices.Equal(s.Command, []string{"./serve"}) || !slices.Equal(s.Entrypoint, []string{"/app/web"}) {
		t.Errorf("command %q entrypoint %q", s.Command, s.Entrypoint)
	}
}

func TestImageRefusals(t *testing.T) {
	cases := []struct {
		name, def, field, fragment string
	}{
		{"bad reference", "  web:\n    image: Shop/Web\n", "services.web.image", "docker-archive:"},
		{"archive without path", "  web:\n    image: 'docker-archive:'\n", "services.web.image", "needs a path"},
		{"entrypoint without image", "  web:\n    command: [./web]\n    entrypoint: [/web]\n", "services.web.entrypoint", "add image:"},
		{"empty entrypoint program", "  web:\n    image: a/b:c\n    entrypoint: ['']\n", "services.web.entrypoint", "program"},
		{"no command, no image", "  web:\n    port: 80\n", "services.web.command", "image:"},
		{"registry not waited for", "  web:\n    image: registry:5000/a:v1\n  registry:\n    command: [weft, registry]\n    port: 5000\n", "services.web.depends_on", "add registry to depends_on"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := parseProblems(t, edit(t, base, addService(tc.def)...))
			found := false
			for _, p := range ps {
				if p.Field == tc.field && strings.Contains(p.Message+" "+p.Fix, tc.fragment) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem on %s mentioning %q; got:\n%v", tc.field, tc.fragment, ps)
			}
		})
	}
}
