package cluster

import (
	"fmt"
	"log/slog"

	"github.com/weft-dev/weft/internal/lab"
	"github.com/weft-dev/weft/internal/provider"
	sshprov "github.com/weft-dev/weft/internal/provider/ssh"
	"github.com/weft-dev/weft/internal/spec"
)

// *lab.Lab is a provider.
var _ provider.Provider = (*lab.Lab)(nil)

// ProviderOptions is what the providers are made with.
type ProviderOptions struct {
	StateRoot string
	Log       *slog.Logger
	// Say prints a line of progress (ssh: what changed on a server).
	Say func(format string, args ...any)
	// AcceptNewHostKeys (ssh): add an unknown server's key to known_hosts
	// instead of refusing the server.
	AcceptNewHostKeys bool
	// SSHDial (ssh) opens the connections to the servers; nil: from this
	// machine's network namespace.
	SSHDial sshprov.DialFunc
}

// NewProvider returns the provider a cluster file's `provider:` names; this
// is the one place that chooses it. spec validation refuses any other name
// first, so the error here only guards a caller that skipped validation.
func NewProvider(kind string, o ProviderOptions) (provider.Provider, error) {
	switch kind {
	case spec.DefaultProvider:
		return &lab.Lab{StateRoot: o.StateRoot, Log: o.Log}, nil
	case spec.ProviderSSH:
		return &sshprov.Provider{StateRoot: o.StateRoot, Log: o.Log, Say: o.Say, AcceptNewHostKeys: o.AcceptNewHostKeys, Dial: o.SSHDial}, nil
	default:
		return nil, fmt.Errorf("provider %q: unknown provider; weft knows `lab` and `ssh`: write `provider: lab` (or leave it out) or `provider: ssh`", kind)
	}
}

// ProviderOf returns the provider that brought the named cluster up on
// this machine, for commands given only a cluster name (`weft down
// --cluster NAME`): ssh when this machine holds the record of its servers,
// else the lab.
func ProviderOf(cluster string, o ProviderOptions) (provider.Provider, error) {
	if sshprov.HasRecord(o.StateRoot, cluster) {
		return NewProvider(spec.ProviderSSH, o)
	}
	return NewProvider(spec.DefaultProvider, o)
}
