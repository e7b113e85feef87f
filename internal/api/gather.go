package api

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// AgentAnswer is one agent's reply to "what is the cluster's status".
type AgentAnswer struct {
	Host   string
	Status Status
	Err    error // the agent did not answer in time, or refused
}

// AskAll asks every agent (host name -> socket) for the status in parallel,
// each with its own deadline, and returns every answer in host order. It
// returns within timeout whatever the agents do.
func AskAll(ctx context.Context, sockets map[string]string, timeout time.Duration) []AgentAnswer {
	clients := make(map[string]*Client, len(sockets))
	for h, s := range sockets {
		clients[h] = NewClient(s)
	}
	return AskClients(ctx, clients, timeout)
}

// AskClients is AskAll for agents reached through clients (host -> client):
// those on other machines (provider ssh).
func AskClients(ctx context.Context, clients map[string]*Client, timeout time.Duration) []AgentAnswer {
	hosts := slices.Sorted(maps.Keys(clients))
	out := make([]AgentAnswer, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			actx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			st, err := clients[h].Status(actx)
			out[i] = AgentAnswer{Host: h, Status: st, Err: err}
		})
	}
	wg.Wait()
	return out
}

// Combine makes one status out of every agent's answer. The first answer
// read from the store wins; agents that did not answer are listed as
// unreachable. When no agent could read the store (quorum lost), the
// freshest agent's last copy is the base, each answering agent's own
// containers replace the copy's, and the answer is marked stale.
func Combine(cluster string, answers []AgentAnswer) (Status, error) {
	var unreachable []string
	answered := map[string]bool{}
	var fresh, stale []Status
	for _, a := range answers {
		if a.Err != nil {
			unreachable = append(unreachable, fmt.Sprintf("%s: agent not answering: %v", a.Host, a.Err))
			continue
		}
		answered[a.Host] = true
		if a.Status.Stale {
			stale = append(stale, a.Status)
		} else {
			fresh = append(fresh, a.Status)
		}
	}
	if len(fresh) > 0 {
		out := fresh[0]
		out.Unreachable = append(out.Unreachable, unreachable...)
		out.Hosts = ownFirewalls(out.Hosts, answers)
		return out, nil
	}
	if len(stale) == 0 {
		return Status{}, fmt.Errorf("no agent of cluster %s answers: %v", cluster, unreachable)
	}
	// The freshest copy that has the applied file is the base.
	base := slices.MinFunc(stale, func(x, y Status) int {
		if x.Applied != y.Applied {
			if x.Applied {
				return -1
			}
			return 1
		}
		return cmp.Compare(ageOf(x), ageOf(y))
	})
	out := base
	out.Hosts = slices.Clone(base.Hosts)
	out.Containers = slices.Clone(base.Containers)
	for _, s := range stale {
		if s.Source == "" || s.Source == base.Source {
			continue
		}
		for _, c := range s.Containers {
			if c.Host != s.Source {
				continue
			}
			i := slices.IndexFunc(out.Containers, func(x model.ContainerStatus) bool { return x.Container == c.Container })
			if i >= 0 {
				out.Containers[i] = c
			} else {
				out.Containers = append(out.Containers, c)
			}
		}
	}
	slices.SortFunc(out.Containers, func(x, y model.ContainerStatus) int { return cmp.Compare(x.Container, y.Container) })
	// What the agents say now beats what the copy said then.
	for i, h := range out.Hosts {
		if answered[h.Name] {
			out.Hosts[i].Agent = "up"
		} else {
			out.Hosts[i].Agent = "down"
		}
	}
	out.Unreachable = []string{"store: no quorum: no agent could read it (" + storeErrorOf(base) + ")"}
	out.Unreachable = append(out.Unreachable, unreachable...)
	out.Hosts = ownFirewalls(out.Hosts, answers)
	return out, nil
}

// ownFirewalls gives every host the firewall its own agent reported (each
// agent reads only its own host's kernel); hosts whose agent did not answer
// have none.
func ownFirewalls(hosts []HostStatus, answers []AgentAnswer) []HostStatus {
	own := map[string]*FirewallStatus{}
	for _, a := range answers {
		if a.Err != nil {
			continue
		}
		for _, h := range a.Status.Hosts {
			if h.Name == a.Host && h.Firewall != nil {
				own[h.Name] = h.Firewall
			}
		}
	}
	out := slices.Clone(hosts)
	for i := range out {
		out[i].Firewall = own[out[i].Name]
	}
	return out
}

func ageOf(s Status) float64 {
	if s.StaleSeconds <= 0 {
		return 1e18 // never synced
	}
	return s.StaleSeconds
}

// storeErrorOf is the agent's own note on why it could not read the store.
func storeErrorOf(s Status) string {
	for _, u := range s.Unreachable {
		if rest, ok := strings.CutPrefix(u, "store: "); ok {
			return rest
		}
	}
	return "no reason given"
}
