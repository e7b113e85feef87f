package image

import "strings"

// Argv is the command a container of the image runs, by docker's rules:
// the file's entrypoint replaces the image's (and drops the image's cmd),
// the file's command replaces the image's cmd; the argv is entrypoint
// followed by cmd. nil means "not given in the file".
func (img Image) Argv(entrypoint, command []string) []string {
	ep, cmd := img.Config.Entrypoint, img.Config.Cmd
	if entrypoint != nil {
		ep, cmd = entrypoint, nil
	}
	if command != nil {
		cmd = command
	}
	return append(append([]string(nil), ep...), cmd...)
}

// Env is the image's environment (KEY=VALUE lines) as a map; the file's
// env is laid over it by the caller.
func (img Image) Env() map[string]string {
	env := make(map[string]string, len(img.Config.Env))
	for _, kv := range img.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k != "" {
			env[k] = v
		}
	}
	return env
}

// Or returns the file's value when given, else the image's: for workdir
// and user.
func Or(file, image string) string {
	if file != "" {
		return file
	}
	return image
}

// DigestOfRootFS is the digest of the image whose RootFS is dir, with any
// owners ("" when dir is not an image of a store).
func DigestOfRootFS(dir string) string {
	parent, base := splitLast(dir)
	if base != rootfsDir && !strings.HasPrefix(base, rootfsDir+"-") {
		return ""
	}
	_, hex := splitLast(parent)
	if len(hex) != 64 {
		return ""
	}
	return "sha256:" + hex
}

func splitLast(p string) (string, string) {
	p = strings.TrimRight(p, "/")
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}
