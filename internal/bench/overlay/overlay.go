// Package overlay is `weft bench overlay`: what weft's VXLAN overlay costs
// against the bare underlay and against the same overlay built by hand with
// plain kernel objects, and what weft's host firewall costs (the same
// overlay in a second cluster with `firewall: false`), measured in one run
// in alternating rounds.
package overlay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/weft-dev/weft/internal/bench/overlay/labrun"
	"github.com/weft-dev/weft/internal/bench/report"
)

// Options of one run. Zero fields take the defaults in parentheses.
type Options struct {
	Duration   time.Duration // of each measurement in a round (10s); iperf3 rounds up to whole seconds
	Rounds     int           // alternating rounds (3)
	Streams    []int         // TCP stream counts of the throughput measurements ([1 4])
	ResultsDir string        // where the CLI saves the report; Run itself writes nothing there
	Log        *slog.Logger  // progress (discarded)
	Weft       string        // path of the weft binary (required)
	Hosts      int           // hosts of the weft cluster, two of them measured (3)
	Tool       string        // "iperf3", "builtin", or "" for iperf3 when installed
	WorkDir    string        // where the generated cluster file goes (a temporary folder)
}

// The four sides measured, in the order of the table's columns.
const (
	Overlay           = "overlay"      // container on host1 -> container on host2, through weft
	Underlay          = "underlay"     // host1 -> host2 namespaces, through the lab router
	Reference         = "reference"    // hand-built kernel VXLAN, the lab's router shape
	Fastest           = "fastest"      // hand-built kernel VXLAN, a purely routed router: the fastest shape
	OverlayNoFirewall = "overlay-nofw" // as overlay, in a second cluster with `firewall: false`
)

// numPaths is len(Paths()).
const numPaths = 5

// Paths are the sides in table order.
func Paths() []string { return []string{Overlay, Underlay, Reference, Fastest, OverlayNoFirewall} }

// Ratios are the comparisons the table shows, numerator/denominator; the
// last one is the cost of the host firewall.
func Ratios() [][2]string {
	return [][2]string{{Overlay, Underlay}, {Overlay, Fastest}, {Overlay, Reference}, {Fastest, Underlay}, {Reference, Underlay}, {Overlay, OverlayNoFirewall}}
}

func (o *Options) defaults() error {
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Rounds == 0 {
		o.Rounds = 3
	}
	if len(o.Streams) == 0 {
		o.Streams = []int{1, 4}
	}
	if o.Hosts == 0 {
		o.Hosts = 3
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	var problems []error
	if o.Duration < 100*time.Millisecond {
		problems = append(problems, fmt.Errorf("duration %s is too short to measure; give at least 1s", o.Duration))
	}
	if o.Rounds < 1 {
		problems = append(problems, fmt.Errorf("rounds = %d: give at least 1", o.Rounds))
	}
	for _, n := range o.Streams {
		if n < 1 || n > 128 {
			problems = append(problems, fmt.Errorf("streams = %d: give 1 to 128", n))
		}
	}
	if o.Hosts < 2 || o.Hosts > 200 {
		problems = append(problems, fmt.Errorf("hosts = %d: the overlay needs 2 to 200 hosts", o.Hosts))
	}
	if o.Weft == "" {
		problems = append(problems, errors.New("the path of the weft binary is missing; pass Options.Weft"))
	}
	tool, err := labrun.ChooseTool(o.Tool, "iperf3")
	o.Tool = tool
	if err != nil {
		problems = append(problems, err)
	}
	return errors.Join(problems...)
}

// Run brings up a weft cluster and the hand-built references, measures the
// sides in alternating rounds, removes everything, and reports.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("weft bench overlay: %w", err)
	}
	started := time.Now()
	loadStart, busyStart := labrun.BusyNote("at the start")
	workDir := o.WorkDir
	if workDir == "" {
		dir, err := os.MkdirTemp("", "weft-bench-overlay-")
		if err != nil {
			return nil, fmt.Errorf("making a work folder: %w", err)
		}
		defer os.RemoveAll(dir)
		workDir = dir
	}
	suffix := labrun.RandomSuffix(4)
	var statuses [2]labrun.Status
	for i, firewall := range []bool{true, false} {
		name := "bo" + suffix
		if !firewall {
			name = "bn" + suffix
		}
		cluster, err := labrun.Up(ctx, o.Weft, workDir, name, clusterFile(name, o.Hosts, firewall), o.Log)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := cluster.Down(); err != nil {
				o.Log.Error("removing the bench cluster; run weft down by hand", "cluster", cluster.Name, "err", err)
			}
		}()
		if statuses[i], err = cluster.Status(ctx); err != nil {
			return nil, err
		}
	}
	var refs [2]*reference
	for i, shape := range []refShape{refLab, refRouted} {
		o.Log.Info("building a kernel VXLAN reference", "namespaces", "weftref-"+suffix+"-"+string(shape)+"-*")
		ref, err := buildReference(suffix, shape, underlayMTU)
		if err != nil {
			return nil, fmt.Errorf("building the kernel VXLAN reference: %w", err)
		}
		defer func() {
			if err := ref.remove(); err != nil {
				o.Log.Error("removing the reference namespaces", "err", err)
			}
		}()
		refs[i] = ref
	}

	sides, err := sidesOf(statuses[0], statuses[1], refs[0], refs[1])
	if err != nil {
		return nil, err
	}
	for _, e := range sides {
		if err := waitReachable(ctx, e); err != nil {
			return nil, err
		}
	}
	m := &measurements{Streams: o.Streams, Rounds: o.Rounds}
	for _, e := range sides {
		mtu, err := linkMTU(e.src, e.srcDev)
		if err != nil {
			return nil, err
		}
		m.MTU[pathIndex(e.name)] = mtu
		m.DF[pathIndex(e.name)] = dfProbe(ctx, e, mtu)
	}
	if err := measureRounds(ctx, o, sides, m); err != nil {
		return nil, err
	}
	r := buildReport(m, toolName(ctx, o.Tool))
	loadEnd, busyEnd := labrun.BusyNote("at the end")
	r.Values["loadavg_start"], r.Values["loadavg_end"] = loadStart, loadEnd
	for _, note := range []string{busyStart, busyEnd} {
		if note != "" {
			r.Notes = append(r.Notes, note)
		}
	}
	r.Started = started
	r.Machine = report.ThisMachine()
	r.Values["cluster_hosts"] = o.Hosts
	r.Values["duration_s"] = o.Duration.Seconds()
	return r, nil
}

// underlayMTU is the lab's default underlay MTU; the overlay gets 50 less.
const underlayMTU = 1500

// clusterFile is a cluster of n hosts in n subnets with an idle container on
// host1 and one on host2: the endpoints of the overlay measurement.
func clusterFile(name string, hosts int, firewall bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: %s\nprovider: lab\nfirewall: %t\nnetwork:\n  cidr: 192.168.0.0/16\n  mtu: %d\n  subnets:\n", name, firewall, underlayMTU)
	for i := 1; i <= hosts; i++ {
		fmt.Fprintf(&b, "    s%d: 192.168.%d.0/24\n", i, i)
	}
	b.WriteString("overlay: {vni: 444, cidr: 10.10.0.0/16}\nhosts:\n")
	for i := 1; i <= hosts; i++ {
		fmt.Fprintf(&b, "  - {name: host%d, subnet: s%d}\n", i, i)
	}
	b.WriteString("services:\n")
	b.WriteString("  bench-src: {command: [sleep, infinity], host: host1}\n")
	b.WriteString("  bench-dst: {command: [sleep, infinity], host: host2}\n")
	return b.String()
}

// overlaySide is the container pair of a bench cluster.
func overlaySide(name string, s labrun.Status) (endpoints, error) {
	srcNs, _, err := s.ContainerNetns("bench-src-1")
	if err != nil {
		return endpoints{}, err
	}
	dstNs, dstIP, err := s.ContainerNetns("bench-dst-1")
	if err != nil {
		return endpoints{}, err
	}
	return endpoints{name: name, src: srcNs, dst: dstNs, dstIP: dstIP, srcDev: "eth0"}, nil
}

// sidesOf names the client and server namespaces of the sides: s is the
// cluster with the firewall, noFW the one without; ref copies the lab's
// router, fastest routes without a bridge.
func sidesOf(s, noFW labrun.Status, ref, fastest *reference) ([]endpoints, error) {
	overlay, err := overlaySide(Overlay, s)
	if err != nil {
		return nil, err
	}
	overlayNoFW, err := overlaySide(OverlayNoFirewall, noFW)
	if err != nil {
		return nil, err
	}
	h1, _, err := s.HostNetns("host1")
	if err != nil {
		return nil, err
	}
	h2, h2Addr, err := s.HostNetns("host2")
	if err != nil {
		return nil, err
	}
	return []endpoints{
		overlay,
		{name: Underlay, src: h1, dst: h2, dstIP: h2Addr, srcDev: "eth0"},
		{name: Reference, src: ref.srcNetns, dst: ref.dstNetns, dstIP: ref.dstIP.String(), srcDev: "eth0"},
		{name: Fastest, src: fastest.srcNetns, dst: fastest.dstNetns, dstIP: fastest.dstIP.String(), srcDev: "eth0"},
		overlayNoFW,
	}, nil
}

// waitReachable polls a TCP connection across the side until it works: the
// agents program the overlay's static entries after `up` reports healthy.
func waitReachable(ctx context.Context, e endpoints) error {
	return labrun.Poll(ctx, 15*time.Second, fmt.Sprintf("%s %s -> %s to answer", e.name, e.src, e.dstIP), func() bool {
		_, err := pingPong(ctx, e, 50*time.Millisecond)
		return err == nil
	})
}

func linkMTU(nsName, dev string) (int, error) {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return 0, fmt.Errorf("opening network namespace %s: %w", nsName, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return 0, fmt.Errorf("opening netlink in %s: %w", nsName, err)
	}
	defer h.Close()
	link, err := h.LinkByName(dev)
	if err != nil {
		return 0, fmt.Errorf("reading %s in %s: %w", dev, nsName, err)
	}
	return link.Attrs().MTU, nil
}

// DF probe outcomes.
const (
	dfOK        = "ok"
	dfBlackHole = "black hole"
	dfNoPing    = "no ping"
)

// dfProbe sends don't-fragment pings of the largest payload the MTU allows
// (MTU - 20 IP - 8 ICMP). If they do not come back, full-size packets are
// silently dropped on the way: a black hole.
func dfProbe(ctx context.Context, e endpoints, mtu int) string {
	if _, err := exec.LookPath("ping"); err != nil {
		return dfNoPing
	}
	probeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := labrun.Run(probeCtx, e.src, "ping", "-n", "-q", "-M", "do", "-s", fmt.Sprint(mtu-28), "-c", "3", "-i", "0.2", "-W", "2", e.dstIP)
	if err != nil {
		return dfBlackHole
	}
	return dfOK
}

func toolName(ctx context.Context, tool string) string {
	const latency = "built-in Go 1-byte TCP ping-pong (latency)"
	if tool == "iperf3" {
		out, err := exec.CommandContext(ctx, "iperf3", "--version").Output()
		version := "iperf3"
		// `iperf3 --version` starts "iperf 3.12 (cJSON 1.7.15)".
		if fields := strings.Fields(string(out)); err == nil && len(fields) > 1 {
			version += " " + fields[1]
		}
		return version + " (throughput), " + latency
	}
	return "built-in Go TCP streams (throughput), " + latency
}

func pathIndex(name string) int {
	for i, p := range Paths() {
		if p == name {
			return i
		}
	}
	panic("unknown path " + name)
}

// measureRounds runs every measurement on every side, round after round,
// rotating which side goes first so that no side always runs on a cold or a
// warm machine.
func measureRounds(ctx context.Context, o Options, sides []endpoints, m *measurements) error {
	for round := range o.Rounds {
		for k := range sides {
			e := sides[(round+k)%len(sides)]
			p := pathIndex(e.name)
			for _, n := range o.Streams {
				var bps float64
				var err error
				if o.Tool == "iperf3" {
					bps, err = iperfThroughput(ctx, e, n, o.Duration)
				} else {
					bps, err = builtinThroughput(ctx, e, n, o.Duration)
				}
				if err != nil {
					return fmt.Errorf("round %d, %s throughput with %d streams: %w", round+1, e.name, n, err)
				}
				m.addThroughput(p, n, bps)
				o.Log.Info("throughput", "round", round+1, "side", e.name, "streams", n, "gbit/s", bps/1e9)
			}
			samples, err := pingPong(ctx, e, o.Duration)
			if err != nil {
				return fmt.Errorf("round %d, %s latency: %w", round+1, e.name, err)
			}
			m.addLatency(p, samples)
			o.Log.Info("latency", "round", round+1, "side", e.name, "round trips", len(samples),
				"p50", labrun.Percentile(samples, 50), "p99", labrun.Percentile(samples, 99))
		}
	}
	return nil
}
