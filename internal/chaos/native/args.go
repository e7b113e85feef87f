// Package native is the `type: weft` provider of chaos experiments: weft's
// native faults (internal/fault) and probes against a lab cluster. It
// resolves an experiment's targets (hosts, services, containers) into the
// places a fault lives, writes every fault to the store before applying it,
// ends each at its expiry, and keeps the fault windows for the timeline.
package native

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/weft-dev/weft/internal/chaos"
)

// Funcs of the weft provider: faults (actions) and probes.
var (
	faultFuncs = map[string][]string{ // func -> required arguments
		"kill-container": {"container"},
		"kill-service":   {"service"},
		"kill-agent":     {"host", "duration"},
		"crash-host":     {"duration"},
		"cut-host":       {"host", "duration"},
		"partition":      {"groups", "duration"},
		"loss":           {"from", "percent", "duration"},
		"bandwidth":      {"target", "rate", "duration"},
		"latency":        {"target", "delay", "duration"},
		"fill-disk":      {"container", "bytes", "duration"},
		"burn-cpu":       {"container", "duration"},
		"end-faults":     {},
	}
	probeFuncs = map[string][]string{
		"service-healthy": {"service"},
		"resolves":        {"name"},
		"http":            {"url"},
		"store-quorum":    {},
		"vip-holder":      {"vip"},
	}
)

// Check checks a weft provider when the experiment is read.
func Check(field string, p map[string]any, ps *chaos.Problems) {
	add := func(f, msg, fix string) { *ps = append(*ps, chaos.Problem{Field: f, Message: msg, Fix: fix}) }
	fn, _ := p["func"].(string)
	required, isFault := faultFuncs[fn]
	if !isFault {
		var ok bool
		if required, ok = probeFuncs[fn]; !ok {
			add(field+".func", fmt.Sprintf("%q is not a weft fault or probe", fn),
				"use one of kill-container, kill-service, kill-agent, crash-host, cut-host, partition, loss, bandwidth, latency, fill-disk, burn-cpu, end-faults, service-healthy, resolves, http, store-quorum, vip-holder")
			return
		}
	}
	args, ok := p["arguments"].(map[string]any)
	if _, present := p["arguments"]; present && !ok {
		add(field+".arguments", "must be a mapping", "")
		return
	}
	for _, r := range required {
		if _, ok := args[r]; !ok {
			add(field+".arguments."+r, "missing", fmt.Sprintf("%s needs %s", fn, strings.Join(required, ", ")))
		}
	}
	af := field + ".arguments."
	if fn == "crash-host" && args["host"] == nil && args["container"] == nil {
		add(af+"host", "missing", "crash-host needs host (or container: the host it runs on)")
	}
	if d, ok := args["duration"]; ok && !hasVar(d) {
		if v, err := duration(d); err != nil || v <= 0 || v > time.Hour {
			add(af+"duration", fmt.Sprint(d), "a duration such as 10s or 1m30s (or seconds), at most 1h")
		}
	}
	if d, ok := args["delay"]; ok && !hasVar(d) {
		if v, err := duration(d); err != nil || v <= 0 || v > 10*time.Second {
			add(af+"delay", fmt.Sprint(d), "a delay such as 100ms, at most 10s")
		}
	}
	if v, ok := args["percent"]; ok && !hasVar(v) {
		if n, ok := v.(int64); !ok || n < 1 || n > 100 {
			add(af+"percent", fmt.Sprint(v), "a whole number from 1 to 100")
		}
	}
	if v, ok := args["rate"]; ok && !hasVar(v) {
		if _, err := Rate(v); err != nil {
			add(af+"rate", err.Error(), "a rate such as 10mbit, 512kbit or 1gbit")
		}
	}
	if v, ok := args["bytes"]; ok && !hasVar(v) {
		if _, err := Size(v); err != nil {
			add(af+"bytes", err.Error(), "a size such as 256MiB or a number of bytes")
		}
	}
	if g, ok := args["groups"]; ok {
		l, ok := g.([]any)
		if !ok || len(l) != 2 {
			add(af+"groups", "must be two lists of hosts", "groups: [[host1], [host2, host3]]")
		}
	}
	if fn == "http" {
		u, _ := args["url"].(string)
		if args["host"] == nil && args["container"] == nil && !hasVar(u) && !loopbackURL(u) {
			add(af+"url", u, "without host: or container: the request goes through 127.0.0.1 (a published port); give host: to ask from inside a host")
		}
	}
}

func hasVar(v any) bool { s, ok := v.(string); return ok && strings.Contains(s, "${") }

func loopbackURL(u string) bool {
	return strings.HasPrefix(u, "http://127.0.0.1:") || strings.HasPrefix(u, "http://localhost:") || u == "http://127.0.0.1" || strings.HasPrefix(u, "http://127.0.0.1/")
}

// duration reads "10s", "1m30s" or a number of seconds.
func duration(v any) (time.Duration, error) {
	switch t := v.(type) {
	case string:
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			return time.Duration(f * float64(time.Second)), nil
		}
		return time.ParseDuration(t)
	case int64:
		return time.Duration(t) * time.Second, nil
	case float64:
		return time.Duration(t * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("%v is not a duration", v)
}

var rateRe = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)?\s*$`)

// Rate reads a tc-style rate (bit, kbit, mbit, gbit are bits per second;
// bps, kbps, mbps, gbps bytes per second) and returns bytes per second.
func Rate(v any) (uint64, error) {
	s := strings.ToLower(fmt.Sprint(v))
	m := rateRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a rate", s)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	mult := map[string]float64{"": 1.0 / 8, "bit": 1.0 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8, "bps": 1, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9}[m[2]]
	b := uint64(f * mult)
	if b < 1000 || b > 10e9 {
		return 0, fmt.Errorf("%q is outside 8kbit..80gbit", s)
	}
	return b, nil
}

var sizeRe = regexp.MustCompile(`^\s*([0-9]+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$`)

// Size reads a size (256MiB, 1G, 1000000) in bytes.
func Size(v any) (int64, error) {
	s := strings.ToLower(fmt.Sprint(v))
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	mult := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 1e6, "mib": 1 << 20, "g": 1 << 30, "gb": 1e9, "gib": 1 << 30}[m[2]]
	if n*mult <= 0 {
		return 0, fmt.Errorf("%q is not a positive size", s)
	}
	return n * mult, nil
}

func strList(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

func sortAddrs(a []netip.Addr) []netip.Addr {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].Less(a[j-1]); j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	return a
}
