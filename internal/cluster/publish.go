package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/publish"
	"github.com/weft-dev/weft/internal/runtime"
	"github.com/weft-dev/weft/internal/spec"
)

// publishDaemon is the name of a cluster's loopback publisher process.
const publishDaemon = "publish"

// StartPublisher makes sure the cluster's publisher process (`weft publish`)
// runs (it outlives the caller) and waits until every published port
// accepts; with nothing published it stops the publisher.
func StartPublisher(ctx context.Context, stateRoot string, c *spec.Cluster) error {
	dir := naming.StateDir(stateRoot, c.Name)
	if len(c.Publish) == 0 {
		return runtime.StopDaemon(dir, publishDaemon)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	argv := []string{exe, "publish", "--cluster", c.Name, "--state-root", stateRoot}
	// The publisher reads the published ports once; a changed publish
	// section gets a fresh publisher, an unchanged one is left alone.
	want, _ := json.Marshal(c.Publish)
	cfgPath := filepath.Join(dir, publishDaemon+".json")
	if have, err := os.ReadFile(cfgPath); err != nil || !bytes.Equal(have, want) {
		if err := runtime.StopDaemon(dir, publishDaemon); err != nil {
			return err
		}
		if err := os.WriteFile(cfgPath, want, 0o644); err != nil {
			return fmt.Errorf("recording published ports: %w", err)
		}
	}
	if _, _, err := runtime.EnsureDaemon(dir, naming.CgroupRelPath(c.Name, publishDaemon), publishDaemon, argv); err != nil {
		return fmt.Errorf("starting the publisher: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range c.Publish {
		for {
			conn, err := net.DialTimeout("tcp", p.Listen, 200*time.Millisecond)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("publishing %s: nothing listens there; see %s", p.Listen, filepath.Join(dir, publishDaemon+".log"))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// RunPublisher is the publisher process: it forwards the cluster's published
// loopback ports to its healthy backends, dialling from inside the lab, and
// follows the cluster's status once a second until ctx ends.
func RunPublisher(ctx context.Context, stateRoot, cluster string, log *slog.Logger) error {
	var st api.Status
	var c *spec.Cluster
	// The published ports come from the applied file, read once at start:
	// `weft up` restarts the publisher when they change.
	for c == nil {
		cl, err := anyAgent(ctx, stateRoot, cluster)
		if err == nil {
			st, err = cl.Status(ctx)
		}
		if err == nil {
			c, err = appliedSpec(ctx, cl)
		}
		if err != nil {
			log.Warn("waiting for the cluster", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
	var pubs []*publish.Publisher
	eg, ctx := errgroup.WithContext(ctx)
	for _, p := range c.Publish {
		pub, err := publish.New(publish.Config{Listen: p.Listen, Backends: backendsFor(c, st, p)}, log)
		if err != nil {
			return fmt.Errorf("publishing %s: %w", p.Listen, err)
		}
		pubs = append(pubs, pub)
		eg.Go(func() error { return pub.Run(ctx) })
	}
	eg.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			cl, err := anyAgent(ctx, stateRoot, cluster)
			if err != nil {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			st, err := cl.Status(sctx)
			cancel()
			if err != nil {
				continue
			}
			for i, p := range c.Publish {
				pubs[i].SetBackends(backendsFor(c, st, p))
			}
		}
	})
	return eg.Wait()
}

// backendsFor lists the containers of the published services on live
// hosts, each dialled from inside its own host's namespace; or, when p
// publishes a VIP, the VIP itself, dialled from the router namespace where
// a client of the VPC enters, so that what 127.0.0.1 shows is exactly what
// the VIP does.
func backendsFor(c *spec.Cluster, st api.Status, p spec.Publish) []publish.Backend {
	if p.VIP != "" {
		v, ok := c.VIPByName(p.VIP)
		if !ok {
			return nil
		}
		return []publish.Backend{{
			Name:  "vip-" + v.Name,
			Addr:  netip.AddrPortFrom(v.Address, uint16(v.Port)),
			Netns: naming.RouterNetns(st.Cluster),
		}}
	}
	down := map[string]bool{}
	for _, h := range st.Hosts {
		down[h.Name] = h.Agent != "up"
	}
	var out []publish.Backend
	for _, ct := range st.Containers {
		if down[ct.Host] {
			continue // its host's lease ran out: cut off or dead
		}
		for _, svc := range p.Services {
			if ct.Service == svc && ct.IP.IsValid() {
				out = append(out, publish.Backend{
					Name:  ct.Container,
					Addr:  netip.AddrPortFrom(ct.IP, uint16(p.Port)),
					Netns: naming.HostNetns(st.Cluster, ct.Host),
				})
			}
		}
	}
	return out
}

// appliedSpec asks an agent for the applied cluster file.
func appliedSpec(ctx context.Context, cl *api.Client) (*spec.Cluster, error) {
	c, err := cl.Spec(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("no cluster file applied yet")
	}
	if strings.TrimSpace(c.Name) == "" {
		return nil, fmt.Errorf("applied cluster file has no name")
	}
	return c, nil
}

// publishTarget names where a publish forwards to, for `weft up`'s output.
func publishTarget(p spec.Publish) string {
	if p.VIP != "" {
		return "VIP " + p.VIP
	}
	return strings.Join(p.Services, ", ")
}
