// Package chaos runs Chaos Toolkit experiments: it reads the experiment file
// (JSON or YAML), checks it, substitutes configuration and secrets, runs the
// steady-state hypothesis, the method and the rollbacks, decides tolerances
// as chaostoolkit-lib does, and writes a journal in Chaos Toolkit's shape.
//
// Providers are pluggable: http and process live here and behave as in
// chaostoolkit-lib; weft's native faults and probes plug in as the provider
// type "weft" from the caller. Nothing here needs root.
package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Activity types.
const (
	TypeProbe  = "probe"
	TypeAction = "action"
)

// Experiment is a parsed experiment. Raw keeps the document as written (the
// journal copies it, as Chaos Toolkit's does).
type Experiment struct {
	Title         string
	Description   string
	Tags          []string
	Configuration map[string]any
	Secrets       map[string]any
	Hypothesis    *Hypothesis
	Method        []*Activity
	Rollbacks     []*Activity
	Load          *Load
	Raw           map[string]any
}

// Hypothesis is the steady-state hypothesis.
type Hypothesis struct {
	Title  string
	Probes []*Activity
}

// Load is the optional `load:` section: a steady request rate through the
// cluster for the whole experiment.
type Load struct {
	URL  string
	Rate int // requests per second
}

// Activity is one probe or action, with any `ref` already resolved.
type Activity struct {
	Type         string
	Name         string
	Provider     map[string]any
	PauseBefore  float64 // seconds
	PauseAfter   float64
	Background   bool
	Tolerance    any
	HasTolerance bool
	Raw          map[string]any
	field        string // where it sits in the file
}

// ProviderType is the provider's `type` (http, process, python, weft).
func (a *Activity) ProviderType() string { s, _ := a.Provider["type"].(string); return s }

// Problem is one thing wrong with an experiment file.
type Problem struct {
	Field   string
	Message string
	Fix     string
}

func (p Problem) String() string {
	s := p.Field + ": " + p.Message
	if p.Fix != "" {
		s += "; fix: " + p.Fix
	}
	return s
}

// Problems is every problem found in one experiment file.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps *Problems) add(field, msg, fix string) {
	*ps = append(*ps, Problem{Field: field, Message: msg, Fix: fix})
}

// ProviderCheck checks a provider of a type the caller plugs in (weft) and
// returns its problems as messages; field is where it sits in the file.
type ProviderCheck func(field string, provider map[string]any, ps *Problems)

// LoadFile reads and checks an experiment file.
func LoadFile(path string, checks map[string]ProviderCheck) (*Experiment, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading experiment %s: %w", path, err)
	}
	return Parse(b, filepath.Ext(path), checks)
}

// Parse decodes an experiment (JSON, or YAML when ext is .yaml/.yml or the
// text is not JSON) and checks it. Any problem is returned as Problems, all
// of them at once.
func Parse(b []byte, ext string, checks map[string]ProviderCheck) (*Experiment, error) {
	var raw map[string]any
	jsonText := b
	trimmed := bytes.TrimSpace(b)
	if ext == ".yaml" || ext == ".yml" || (len(trimmed) > 0 && trimmed[0] != '{') {
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			return nil, Problems{{Field: "(file)", Message: "not valid YAML: " + err.Error(), Fix: "write the experiment as JSON or YAML"}}
		}
		jsonText = j
	}
	dec := json.NewDecoder(bytes.NewReader(jsonText))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, Problems{{Field: "(file)", Message: "not a JSON/YAML object: " + err.Error(), Fix: "the experiment is one object with title, method, ..."}}
	}
	raw = normalize(raw).(map[string]any)
	return build(raw, checks)
}

// normalize turns json.Number into int64 or float64, as Python's json would
// give int or float.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalize(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = normalize(x)
		}
		return t
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

var knownTop = map[string]bool{
	"version": true, "title": true, "description": true, "tags": true, "configuration": true, "secrets": true,
	"steady-state-hypothesis": true, "method": true, "rollbacks": true, "load": true, "contributions": true,
	"extensions": true, "controls": true, "runtime": true,
}

func build(raw map[string]any, checks map[string]ProviderCheck) (*Experiment, error) {
	var ps Problems
	e := &Experiment{Raw: raw}
	for k := range raw {
		if !knownTop[k] {
			ps.add(k, "unknown key", "remove it (known: title, description, tags, configuration, secrets, steady-state-hypothesis, method, rollbacks, load)")
		}
	}
	if _, ok := raw["controls"]; ok {
		ps.add("controls", "controls are not supported by weft chaos", "remove the controls section")
	}
	e.Title, _ = raw["title"].(string)
	if strings.TrimSpace(e.Title) == "" {
		ps.add("title", "missing", "give the experiment a title")
	}
	if d, ok := raw["description"]; ok {
		if e.Description, ok = d.(string); !ok {
			ps.add("description", "must be a string", "")
		}
	}
	if t, ok := raw["tags"]; ok {
		l, ok := t.([]any)
		if !ok {
			ps.add("tags", "must be a list of strings", "")
		}
		for i, x := range l {
			s, ok := x.(string)
			if !ok {
				ps.add(fmt.Sprintf("tags[%d]", i), "must be a string", "")
			}
			e.Tags = append(e.Tags, s)
		}
	}
	for _, key := range []string{"configuration", "secrets"} {
		v, ok := raw[key]
		if !ok {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			ps.add(key, "must be a mapping", "")
			continue
		}
		if key == "configuration" {
			e.Configuration = m
			for k, x := range m {
				checkConfigValue(key+"."+k, x, &ps)
			}
		} else {
			e.Secrets = m
			for scope, x := range m {
				sm, ok := x.(map[string]any)
				if !ok {
					ps.add(key+"."+scope, "a secrets scope must be a mapping of names to values", "write secrets: {scope: {name: value}}")
					continue
				}
				for k, y := range sm {
					checkConfigValue(key+"."+scope+"."+k, y, &ps)
				}
			}
		}
	}
	if l, ok := raw["load"]; ok {
		e.Load = parseLoad(l, &ps)
	}

	named := map[string]map[string]any{} // for ref
	var all []*Activity
	if h, ok := raw["steady-state-hypothesis"]; ok {
		hm, ok := h.(map[string]any)
		if !ok {
			ps.add("steady-state-hypothesis", "must be a mapping with title and probes", "")
		} else {
			e.Hypothesis = &Hypothesis{}
			e.Hypothesis.Title, _ = hm["title"].(string)
			if e.Hypothesis.Title == "" {
				ps.add("steady-state-hypothesis.title", "missing", "give the hypothesis a title")
			}
			probes, ok := hm["probes"].([]any)
			if _, present := hm["probes"]; present && !ok {
				ps.add("steady-state-hypothesis.probes", "must be a list", "")
			}
			for i, p := range probes {
				f := fmt.Sprintf("steady-state-hypothesis.probes[%d]", i)
				a := parseActivity(f, p, named, &ps)
				if a == nil {
					continue
				}
				if a.Type != TypeProbe {
					ps.add(f+".type", fmt.Sprintf("%q in a hypothesis", a.Type), "the steady-state hypothesis holds probes only")
				}
				if !a.HasTolerance {
					ps.add(f+".tolerance", "missing", "every hypothesis probe needs a tolerance (true, 200, [200, 299], {type: regex, ...})")
				} else {
					checkTolerance(f+".tolerance", a.Tolerance, &ps)
				}
				e.Hypothesis.Probes = append(e.Hypothesis.Probes, a)
				all = append(all, a)
			}
		}
	}
	m, ok := raw["method"].([]any)
	switch {
	case raw["method"] == nil:
		ps.add("method", "missing", "the method lists at least one activity")
	case !ok:
		ps.add("method", "must be a list of activities", "")
	case len(m) == 0:
		ps.add("method", "is empty", "the method lists at least one activity")
	}
	for i, x := range m {
		if a := parseActivity(fmt.Sprintf("method[%d]", i), x, named, &ps); a != nil {
			e.Method = append(e.Method, a)
			all = append(all, a)
		}
	}
	if r, ok := raw["rollbacks"]; ok {
		l, ok := r.([]any)
		if !ok {
			ps.add("rollbacks", "must be a list of actions", "")
		}
		for i, x := range l {
			f := fmt.Sprintf("rollbacks[%d]", i)
			if a := parseActivity(f, x, named, &ps); a != nil {
				if a.Type != TypeAction {
					ps.add(f+".type", fmt.Sprintf("%q in rollbacks", a.Type), "rollbacks hold actions only")
				}
				e.Rollbacks = append(e.Rollbacks, a)
				all = append(all, a)
			}
		}
	}
	for _, a := range all {
		checkProvider(a, checks, &ps)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return e, nil
}

func parseLoad(v any, ps *Problems) *Load {
	m, ok := v.(map[string]any)
	if !ok {
		ps.add("load", "must be a mapping {url, rate}", "write load: {url: http://127.0.0.1:8080/..., rate: 50}")
		return nil
	}
	l := &Load{}
	l.URL, _ = m["url"].(string)
	if !strings.HasPrefix(l.URL, "http://127.0.0.1:") && !strings.HasPrefix(l.URL, "http://localhost:") {
		ps.add("load.url", fmt.Sprintf("%q is not a published loopback port", l.URL), "load runs through a port the cluster publishes on 127.0.0.1")
	}
	r, ok := m["rate"].(int64)
	if !ok || r <= 0 || r > 2000 {
		ps.add("load.rate", "must be a whole number of requests per second, 1 to 2000", "")
	}
	l.Rate = int(r)
	return l
}

func checkConfigValue(field string, v any, ps *Problems) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	t, _ := m["type"].(string)
	switch t {
	case "env":
		if k, _ := m["key"].(string); k == "" {
			ps.add(field+".key", "missing", "name the environment variable: {type: env, key: NAME}")
		}
	case "":
		// a plain mapping value
	default:
		ps.add(field+".type", fmt.Sprintf("%q is not supported", t), "use a plain value or {type: env, key: NAME, default: ...}")
	}
}

func parseActivity(field string, v any, named map[string]map[string]any, ps *Problems) *Activity {
	m, ok := v.(map[string]any)
	if !ok {
		ps.add(field, "must be a mapping (an activity)", "")
		return nil
	}
	if ref, ok := m["ref"]; ok {
		name, _ := ref.(string)
		target, found := named[name]
		if !found {
			ps.add(field+".ref", fmt.Sprintf("no earlier activity is named %q", name), "ref names an activity declared before it")
			return nil
		}
		m = target
	}
	a := &Activity{Raw: m}
	a.Type, _ = m["type"].(string)
	if a.Type != TypeProbe && a.Type != TypeAction {
		ps.add(field+".type", fmt.Sprintf("%v", m["type"]), "an activity's type is probe or action")
	}
	a.Name, _ = m["name"].(string)
	if a.Name == "" {
		ps.add(field+".name", "missing", "name every activity")
	} else if _, dup := named[a.Name]; !dup {
		named[a.Name] = m
	}
	a.Provider, ok = m["provider"].(map[string]any)
	if !ok {
		ps.add(field+".provider", "missing or not a mapping", "give the activity a provider {type: http|process|weft, ...}")
		a.Provider = map[string]any{}
	}
	a.field = field + ".provider"
	if b, ok := m["background"]; ok {
		if a.Background, ok = b.(bool); !ok {
			ps.add(field+".background", "must be true or false", "")
		}
	}
	if p, ok := m["pauses"]; ok {
		pm, ok := p.(map[string]any)
		if !ok {
			ps.add(field+".pauses", "must be {before: seconds, after: seconds}", "")
		}
		for k, x := range pm {
			f, ok := number(x)
			if (k != "before" && k != "after") || !ok || f < 0 {
				ps.add(field+".pauses."+k, "must be before or after, a number of seconds >= 0", "")
				continue
			}
			if k == "before" {
				a.PauseBefore = f
			} else {
				a.PauseAfter = f
			}
		}
	}
	a.Tolerance, a.HasTolerance = m["tolerance"]
	return a
}

func checkProvider(a *Activity, checks map[string]ProviderCheck, ps *Problems) {
	field := a.field
	switch t := a.ProviderType(); t {
	case "http":
		if u, _ := a.Provider["url"].(string); u == "" {
			ps.add(field+".url", "missing", "an http provider needs a url")
		}
		if h, ok := a.Provider["headers"]; ok {
			if _, ok := h.(map[string]any); !ok {
				ps.add(field+".headers", "must be a mapping of names to values", "")
			}
		}
	case "process":
		if p, _ := a.Provider["path"].(string); p == "" {
			ps.add(field+".path", "missing", "a process provider needs the path of an executable")
		}
		switch a.Provider["arguments"].(type) {
		case nil, string, []any, map[string]any:
		default:
			ps.add(field+".arguments", "must be a string, a list or a mapping", "")
		}
	case "python":
		ps.add(field+".type", "python providers (Chaos Toolkit extensions) are not supported", "use type: weft for faults and probes, or http/process")
	case "":
		ps.add(field+".type", "missing", "a provider's type is http, process or weft")
	default:
		if c, ok := checks[t]; ok {
			c(field, a.Provider, ps)
			return
		}
		ps.add(field+".type", fmt.Sprintf("%q is not a provider type", t), "use http, process or weft")
	}
}

func number(v any) (float64, bool) {
	switch t := v.(type) {
	case int64:
		return float64(t), true
	case float64:
		return t, true
	case int:
		return float64(t), true
	}
	return 0, false
}
