package spec

import (
	"fmt"
	"regexp"

	"gopkg.in/yaml.v3"
)

// Limits on what a cluster file may cost to read. A real cluster file is a
// few kilobytes; these stop a hostile or broken one before it costs minutes
// or gigabytes.
const (
	// MaxFileBytes is the largest cluster file weft reads.
	MaxFileBytes = 1 << 20
	// maxExpandedNodes bounds the YAML nodes of a file once every alias
	// (*anchor) is expanded: nested aliases can make a small file expand
	// into billions of values ("billion laughs").
	maxExpandedNodes = 200_000
)

// CheckSize refuses a file over MaxFileBytes (also a compose file).
func CheckSize(data []byte) *Problem {
	if len(data) <= MaxFileBytes {
		return nil
	}
	return &Problem{Field: "(file)", Value: fmt.Sprint(len(data)),
		Message: fmt.Sprintf("the cluster file is %d bytes, over the limit of %d", len(data), MaxFileBytes),
		Fix:     "a cluster file is a few kilobytes; check that -f names the right file"}
}

// checkExpansion counts the nodes of the document with every alias
// expanded, in time linear in the nodes written (each node's expanded size
// is computed once), and refuses a document over maxExpandedNodes or one
// whose alias refers to itself.
func checkExpansion(root *yaml.Node) *Problem {
	size := map[*yaml.Node]int{}
	const inProgress = -1
	var count func(n *yaml.Node) (int, *yaml.Node)
	count = func(n *yaml.Node) (int, *yaml.Node) {
		if n == nil {
			return 0, nil
		}
		if s, ok := size[n]; ok {
			if s == inProgress {
				return 0, n
			}
			return s, nil
		}
		size[n] = inProgress
		total := 1
		if n.Kind == yaml.AliasNode {
			s, loop := count(n.Alias)
			if loop != nil {
				return 0, loop
			}
			total = s
		}
		for _, c := range n.Content {
			s, loop := count(c)
			if loop != nil {
				return 0, loop
			}
			total += s
			if total > maxExpandedNodes {
				break
			}
		}
		total = min(total, maxExpandedNodes+1)
		size[n] = total
		return total, nil
	}
	total, loop := count(root)
	switch {
	case loop != nil:
		return &Problem{Field: "(yaml)", Line: loop.Line, Column: loop.Column,
			Message: "an alias refers to the value that contains it, which never ends",
			Fix:     "point the alias (*name) at an anchor defined outside the value it is in"}
	case total > maxExpandedNodes:
		return &Problem{Field: "(yaml)",
			Message: fmt.Sprintf("with its aliases (*name) expanded the file holds more than %d values", maxExpandedNodes),
			Fix:     "use fewer nested aliases; a cluster file this large is almost certainly a mistake"}
	}
	return nil
}

// zeroRule says, for a field that takes a default when left out, what values
// it accepts: a written 0 there is refused rather than silently becoming the
// default.
type zeroRule struct {
	field    *regexp.Regexp
	accepts  string
	fallback string
}

var zeroRules = []zeroRule{
	{regexp.MustCompile(`^version$`), "1", "1"},
	{regexp.MustCompile(`^network\.mtu$`), fmt.Sprintf("%d..%d", minMTU, maxMTU), fmt.Sprint(DefaultMTU)},
	{regexp.MustCompile(`^overlay\.port$`), "a UDP port, 1..65535", fmt.Sprint(DefaultOverlayPort)},
	{regexp.MustCompile(`^overlay\.mtu$`), fmt.Sprintf("%d..%d", minMTU, maxMTU), fmt.Sprintf("network.mtu - %d", VXLANOverhead)},
	{regexp.MustCompile(`^services\.[^.]+\.health\.interval$`), "a positive duration such as 500ms", DefaultHealthInterval.String()},
	{regexp.MustCompile(`^services\.[^.]+\.health\.timeout$`), "a positive duration such as 500ms", DefaultHealthTimeout.String()},
	{regexp.MustCompile(`^services\.[^.]+\.health\.retries$`), "1 or more", fmt.Sprint(DefaultHealthRetries)},
	{regexp.MustCompile(`^services\.[^.]+\.health\.port$`), "a TCP port, 1..65535", "the service's port"},
	{regexp.MustCompile(`^routes\[\d+\]\.timeout$`), "a positive duration such as 10s", defaultRouteTimeout.String()},
	{regexp.MustCompile(`^gateway\.max_body_bytes$`), "1 or more bytes", fmt.Sprint(DefaultMaxBodyBytes)},
	{regexp.MustCompile(`^gateway\.metrics_port$`), "a TCP port, 1..65535", fmt.Sprint(DefaultMetricsPort)},
	{regexp.MustCompile(`^services\.[^.]+\.stop_grace$`), "a positive duration such as 10s", DefaultStopGrace.String()},
	{regexp.MustCompile(`^services\.[^.]+\.update\.parallelism$`), "1 or more", "1"},
	{regexp.MustCompile(`^services\.[^.]+\.update\.monitor$`), "a positive duration such as 5s", DefaultMonitor.String()},
	{regexp.MustCompile(`^publish\[\d+\]\.port$`), "a TCP port, 1..65535", "the port its services share"},
}

// writtenZeroProblems reports the fields written as 0 whose range excludes 0.
func (d *decoder) writtenZeroProblems() Problems {
	var ps Problems
	for field, n := range d.zeros {
		for _, r := range zeroRules {
			if !r.field.MatchString(field) {
				continue
			}
			ps = append(ps, Problem{Field: field, Value: n.Value, Line: n.Line, Column: n.Column,
				Message: "0 is not allowed here: it accepts " + r.accepts,
				Fix:     "write a value in that range, or leave the field out for the default (" + r.fallback + ")"})
			d.undecodable[field] = true
			break
		}
	}
	return ps
}
