package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Presence says a host is alive apart from its agent: the host's resolver,
// a process of its own that outlives the agent, keeps it under alive/<host>
// with a lease of its own. A host is down when neither its agent's record
// (hosts/<host>) nor its presence is alive: a cut off, frozen or dead host
// loses both within one lease, while a killed or restarting agent leaves its
// containers running and their names answered (LiveHosts).
type Presence struct {
	Host  string    `json:"host"`
	Pid   int       `json:"pid"`
	Since time.Time `json:"since"`
}

func (s *Store) alivePrefix() string         { return s.root + "alive/" }
func (s *Store) aliveKey(host string) string { return s.alivePrefix() + host }

// RegisterPresence keeps p under alive/<host> with a lease of ttl, exactly
// as RegisterHost keeps a host record: it returns after the first put, and
// renews and re-registers until ctx ends, then revokes.
func (s *Store) RegisterPresence(ctx context.Context, p Presence, ttl time.Duration) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding presence of %s: %w", p.Host, err)
	}
	r := newRegistration(s, s.aliveKey(p.Host), string(body), ttl)
	if err := r.register(ctx); err != nil {
		return fmt.Errorf("registering presence of host %s: %w", p.Host, err)
	}
	go r.run(ctx)
	return nil
}

// LiveHosts is the set of hosts that are up: those with a live agent record
// or a live presence. Instances on any other host are down (DNS leaves them
// out).
func (snap Snapshot) LiveHosts() map[string]bool {
	live := make(map[string]bool, len(snap.Hosts))
	for h := range snap.Hosts {
		live[h] = true
	}
	for h := range snap.Alive {
		live[h] = true
	}
	return live
}
