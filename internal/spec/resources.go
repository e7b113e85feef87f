package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Resources are a container's limits, enforced by the cgroup controllers of
// the host (memory, cpu, pids). A left-out field means no limit, except
// Pids, which defaults to DefaultPids so that a fork bomb stops by default.
type Resources struct {
	Memory int64   `json:"memory,omitempty"` // bytes; written as 256Mi, 1Gi, 512M or a plain number of bytes
	CPU    float64 `json:"cpu,omitempty"`    // cores (0.5 is half of one core), enforced as a CFS quota
	Pids   int     `json:"pids,omitempty"`   // processes and threads at once; DefaultPids when left out
}

const (
	// DefaultPids is the pids limit of a container whose file gives none.
	DefaultPids = 4096
	// MinMemory is the smallest memory limit accepted: below it even the
	// container's init cannot run.
	MinMemory = 8 << 20
	// MinPids leaves room for the container's init and its threads.
	MinPids = 32
	// MaxCPU bounds the CPU limit (cores).
	MaxCPU = 1024
)

// resources reads `resources: {memory: 256Mi, cpu: 0.5, pids: 512}`.
func (d *decoder) resources(n *yaml.Node, path string) *Resources {
	r := &Resources{}
	d.at(n, path)
	d.mapping(n, path, fieldReaders{
		"memory": func(v *yaml.Node, p string) { r.Memory = d.byteSize(v, p) },
		"cpu":    func(v *yaml.Node, p string) { r.CPU = d.cores(v, p) },
		"pids":   func(v *yaml.Node, p string) { r.Pids = d.integer(v, p) },
	})
	// 0 would read as "no limit" (or the default pids): refuse it, as a
	// written 0 is refused everywhere its range excludes it.
	for _, key := range []string{"memory", "cpu", "pids"} {
		field := join(path, key)
		if z, ok := d.zeros[field]; ok {
			delete(d.zeros, field)
			d.fail(z, field, z.Value, "0 is not a limit", "write a positive limit, or leave "+key+" out (no limit; pids: the default "+strconv.Itoa(DefaultPids)+")")
		}
	}
	return r
}

func (d *decoder) byteSize(n *yaml.Node, path string) int64 {
	s, ok := d.scalar(n, path)
	if !ok || isNull(s) {
		return 0
	}
	v, err := ParseByteSize(s.Value)
	if err != nil {
		d.fail(s, path, s.Value, err.Error(), "write a size like 256Mi, 1Gi, 512M or a number of bytes")
		return 0
	}
	if v == 0 {
		d.zeros[path] = s
	}
	return v
}

func (d *decoder) cores(n *yaml.Node, path string) float64 {
	s, ok := d.scalar(n, path)
	if !ok || isNull(s) {
		return 0
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s.Value), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.fail(s, path, s.Value, "must be a number of cores", "write e.g. 0.5 for half a core or 2 for two cores")
		return 0
	}
	if v == 0 {
		d.zeros[path] = s
	}
	return v
}

// byteUnits are the suffixes ParseByteSize accepts, longest first.
var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
	{"k", 1e3}, {"B", 1}, {"", 1},
}

// ParseByteSize reads a size in bytes: digits with an optional unit, binary
// (Ki, Mi, Gi, Ti) or decimal (K, M, G, T).
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, u := range byteUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok || num == "" {
			continue
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number followed by a unit (Ki, Mi, Gi, Ti, K, M, G, T)", s)
		}
		if v < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		if v > math.MaxInt64/u.factor {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return v * u.factor, nil
	}
	return 0, fmt.Errorf("%q is empty", s)
}

// validateResources checks the ranges of a service's resources.
func validateResources(ps *Problems, field string, r *Resources) {
	if r == nil {
		return
	}
	if r.Memory != 0 && r.Memory < MinMemory {
		ps.add(field+".memory", r.Memory, fmt.Sprintf("below the smallest memory limit weft accepts (%d bytes, 8Mi)", int64(MinMemory)),
			"give at least 8Mi, or leave memory out for no limit")
	}
	if r.CPU < 0 || r.CPU > MaxCPU || (r.CPU > 0 && r.CPU < 0.01) {
		ps.add(field+".cpu", r.CPU, fmt.Sprintf("not a CPU limit from 0.01 to %d cores", MaxCPU), "write e.g. 0.5, or leave cpu out for no limit")
	}
	if r.Pids != 0 && (r.Pids < MinPids || r.Pids > 1<<22) {
		ps.add(field+".pids", r.Pids, fmt.Sprintf("not a pids limit from %d to %d", MinPids, 1<<22),
			fmt.Sprintf("give at least %d (the container's init and its threads count too), or leave pids out for the default %d", MinPids, DefaultPids))
	}
}

// EffectivePids is the pids limit a container of this service runs with.
func (r *Resources) EffectivePids() int {
	if r == nil || r.Pids == 0 {
		return DefaultPids
	}
	return r.Pids
}

// fraction reads a number from 0 to 1 (gateway.access_log_sample); a
// written 0 is meaningful there (off), so it is kept, not defaulted.
func (d *decoder) fraction(n *yaml.Node, path string) *float64 {
	return d.unitInterval(n, path, "must be a fraction from 0 (off) to 1 (every request)", "write e.g. 0.1 to log one request in ten, 0 to turn the access log off")
}

// unitInterval reads a number from 0 to 1; nil when it is left out or
// refused (with message and fix).
func (d *decoder) unitInterval(n *yaml.Node, path, message, fix string) *float64 {
	s, ok := d.scalar(n, path)
	if !ok || isNull(s) {
		return nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s.Value), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
		d.fail(s, path, s.Value, message, fix)
		return nil
	}
	return &v
}
