package agent

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/plan"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// vetter checks again what an agent reads from the store before the agent
// acts on it: the spec must validate and name this cluster, and every
// assignment must be one placement could have made (plan.CheckAssignment).
// The store may hold anything anyone with a certificate wrote; a value
// refused here is reported (logged once, listed in status) and never acted
// on.
//
// With keep set, a refused value is replaced by the last valid one this
// vetter saw for the same key, so that a host goes on as it was (its
// containers keep running, its peers stay programmed) instead of tearing
// down what the bad value no longer describes. Without keep it is left out:
// the leader re-places a container whose assignment it refused, which
// writes a valid one over the bad one.
type vetter struct {
	cluster string
	keep    bool
	log     *slog.Logger // nil: refusals are only returned

	// The last spec checked, and its verdict: the mirror hands out the same
	// spec until the key changes, and validation is not free.
	checked    *spec.Cluster
	checkedErr error

	spec   *spec.Cluster               // last valid spec (keep)
	assign map[string]model.Assignment // last valid assignments (keep)
	logged map[string]bool             // refusals logged and still present
}

// checkSpec says why a spec read from the store must not be acted on.
func checkSpec(cluster string, c *spec.Cluster) error {
	if c.Name != cluster {
		return fmt.Errorf("it is the file of cluster %q, not %s", c.Name, cluster)
	}
	if probs := c.Validate(); len(probs) > 0 {
		return fmt.Errorf("it does not validate: %w", probs)
	}
	return nil
}

// vetSnapshot returns snap as the agent may act on it, and every refusal
// as "key: why", sorted.
func (v *vetter) vetSnapshot(snap store.Snapshot) (store.Snapshot, []string) {
	var refused []string
	snap.Spec, snap.Assign, refused = v.vet(snap.Spec, snap.Assign, snap.Bad)
	return snap, refused
}

// vet checks a spec and assignments read together; bad are the values of
// the same read that did not decode.
func (v *vetter) vet(c *spec.Cluster, assign map[string]model.Assignment, bad []store.BadValue) (*spec.Cluster, map[string]model.Assignment, []string) {
	var refused []string
	refuse := func(key, why string) { refused = append(refused, key+": "+why) }
	specRefused := false
	assignRefused := map[string]bool{}
	for _, b := range bad {
		key := b.Kind
		if b.Name != "" {
			key += "/" + b.Name
		}
		refuse(key, "does not decode: "+b.Err)
		switch b.Kind {
		case "spec":
			specRefused = true
		case "assign":
			assignRefused[b.Name] = true
		}
	}
	if c != nil {
		if c != v.checked {
			v.checked, v.checkedErr = c, checkSpec(v.cluster, c)
		}
		if v.checkedErr != nil {
			refuse("spec", v.checkedErr.Error())
			specRefused, c = true, nil
		}
	}
	if v.keep {
		if specRefused {
			c = v.spec
		} else {
			v.spec = c
		}
	}

	valid := make(map[string]model.Assignment, len(assign))
	for name, a := range assign {
		if err := plan.CheckAssignment(c, name, a); err != nil {
			refuse("assign/"+name, err.Error())
			assignRefused[name] = true
			continue
		}
		valid[name] = a
	}
	if v.keep {
		for name := range assignRefused {
			if last, ok := v.assign[name]; ok {
				valid[name] = last
			}
		}
		v.assign = maps.Clone(valid)
	}
	slices.Sort(refused)
	v.report(refused)
	return c, valid, refused
}

// report logs each refusal once while it lasts.
func (v *vetter) report(refused []string) {
	if v.log == nil {
		return
	}
	now := make(map[string]bool, len(refused))
	for _, r := range refused {
		now[r] = true
		if !v.logged[r] {
			v.log.Warn("refusing a value read from the store: it is not acted on", "refused", r)
		}
	}
	v.logged = now
}
