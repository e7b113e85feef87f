package compose

import (
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/weft-dev/weft/internal/spec"
)

// volumes maps named volumes (`data:/var/lib/data`) to weft volumes: a
// directory on the container's host that outlives the container. Bind
// mounts, tmpfs and anonymous volumes are refused.
func (t *translation) volumes(path string, vols []types.ServiceVolumeConfig) []spec.Volume {
	var out []spec.Volume
	for i, v := range vols {
		field := fmt.Sprintf("%s.volumes[%d]", path, i)
		switch {
		case v.Type == types.VolumeTypeBind:
			t.add(field, v.Source+":"+v.Target, "not supported by weft: a bind mount of this machine's files does not exist on the cluster's hosts",
				"use a named volume (`data:"+v.Target+"`), or put the files in the image")
			continue
		case v.Type != types.VolumeTypeVolume:
			t.add(field+".type", v.Type, "not supported by weft: only named volumes are", "use a named volume, e.g. `data:"+v.Target+"`")
			continue
		case v.Source == "":
			t.add(field, v.Target, "an anonymous volume: weft needs a name to find it again after a restart",
				"name it, e.g. `data:"+v.Target+"`, and list it under the top-level volumes:")
			continue
		case v.ReadOnly:
			t.add(field+".read_only", "true", "not supported by weft: volumes are mounted read-write", "remove :ro / read_only")
		}
		t.from(fmt.Sprintf("services.%s.volumes[%d]", path[len("services."):], len(out)), field)
		out = append(out, spec.Volume{Name: v.Source, Path: v.Target})
	}
	return out
}
