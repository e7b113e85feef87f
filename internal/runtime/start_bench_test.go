package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weft-dev/weft/internal/cgroup"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// BenchmarkContainerStart measures a container's start: from Supervise
// until its workload has printed its first line, then stops it (untimed).
// docs/security.md compares it before and after isolation.
func BenchmarkContainerStart(b *testing.B) { benchStart(b, nil) }

// BenchmarkImageContainerStart is BenchmarkContainerStart for a container
// of an unpacked image (busybox), with each kind of writable layer,
// without and with a user namespace (-userns: the image's files owned in
// the cluster's map, as internal/image unpacks them for it). The image is
// unpacked once before (as a host does once per image and map); a new
// config hash per start would make a new layer, so every start here
// reuses one layer as a restart does (for copy: the copy is made once).
func BenchmarkImageContainerStart(b *testing.B) {
	for _, kind := range []string{layerOverlay, layerCopy} {
		for _, userns := range []bool{false, true} {
			name := kind + map[bool]string{false: "", true: "-userns"}[userns]
			b.Run(name, func(b *testing.B) {
				img := busyboxImage(b)
				benchStart(b, func(c *Config) {
					c.Image, c.forceCopy = img, kind == layerCopy
					if userns {
						c.UserNS = ClusterIDMap(c.Cluster)
						if err := ShiftOwnership(img, identityIDs, c.UserNS); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

// BenchmarkContainerStartUserNS is BenchmarkContainerStart without and
// with a user namespace (the workload then starts through the userns
// stage, a second run of the binary). The stage is the init's binary:
// the test stand-in, or with WEFT_BENCH_EXE the real weft binary, whose
// start (package initialisation) costs more.
func BenchmarkContainerStartUserNS(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "on"}[on]
		b.Run(name, func(b *testing.B) {
			benchStart(b, func(c *Config) {
				if on {
					c.UserNS = ClusterIDMap(c.Cluster)
				}
			})
		})
	}
}

func benchStart(b *testing.B, mod func(*Config)) {
	if initExe == "" {
		b.Skip("needs root")
	}
	exe := initExe
	if e := os.Getenv("WEFT_BENCH_EXE"); e != "" {
		exe = e
	}
	cluster := fmt.Sprintf("rb%d", os.Getpid())
	ns := naming.ContainerNetns(cluster, "h", "bench-1")
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	rt := &Runtime{StateRoot: b.TempDir(), Exe: exe, Log: slog.New(slog.DiscardHandler)}
	defer cgroup.KillAll(naming.CgroupRelPath(cluster), 10*time.Second)
	cfg := Config{Cluster: cluster, Host: "h1", Container: "bench-1", Service: "svc",
		Command: []string{"sh", "-c", "echo up; exec sleep 1000"}, Netns: ns, Restart: spec.RestartNever}
	if mod != nil {
		mod(&cfg)
	}
	logPath := rt.LogPath(cluster, "h1", "bench-1")
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		_ = os.Remove(logPath)
		ctx, cancel := context.WithCancel(context.Background())
		running := make(chan struct{}, 1)
		done := make(chan error, 1)
		b.StartTimer()
		go func() {
			done <- rt.Supervise(ctx, cfg, func(e Event) {
				if e.State == model.StateRunning {
					running <- struct{}{}
				}
			})
		}()
		<-running
		for {
			if data, _ := os.ReadFile(logPath); strings.Contains(string(data), "up\n") {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		b.StopTimer()
		if err := rt.Stop(context.Background(), cluster, "h1", "bench-1", time.Second); err != nil {
			b.Fatal(err)
		}
		<-done
		cancel()
	}
}
