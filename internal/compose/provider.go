package compose

import (
	"github.com/compose-spec/compose-go/v2/types"
)

// ProviderType is the value of a service's provider.type that makes it a
// host binary run by weft, as a weft.yaml service without image: its
// command's first word is a path on the host (relative to the compose
// project's directory) or weft itself (weft gateway, weft registry).
//
// The compose specification's provider attribute is its own way to declare
// a service that is not a container from an image but is run by another
// component; compose-go then does not ask for image or build. weft's
// gateway and the host's PostgreSQL have no image (there is no registry
// to take one from), so examples/seed000 runs them this way.
const ProviderType = "weft"

// provider checks a service's provider: only type weft, with a command and
// without image. The service then translates as any other, without image.
func (t *translation) provider(path string, svc types.ServiceConfig) {
	if svc.Provider == nil {
		return
	}
	field := path + ".provider"
	if svc.Provider.Type != ProviderType {
		t.add(field+".type", svc.Provider.Type, "weft runs no other provider",
			"write `provider: {type: weft}` for a host binary run by weft, or use image:")
		return
	}
	if svc.Image != "" {
		t.add(path+".image", svc.Image, "a service of provider weft is a host binary, not an image",
			"remove image:, or remove provider: to run the image")
	}
	if len(svc.Command) == 0 {
		t.add(path+".command", "", "missing: a service of provider weft runs its command on the host",
			"write e.g. `command: [weft, gateway]` or `command: [./bin/app, --flag]` (a path relative to the compose file's directory)")
	}
}
