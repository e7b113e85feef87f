package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/weft-dev/weft/internal/image"
	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/nsthread"
	"github.com/weft-dev/weft/internal/overlay"
	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/store"
)

// pullTimeout bounds pulling and unpacking one image.
const pullTimeout = 5 * time.Minute

// imageOf returns the service's image on this host, pulling and
// unpacking it the first time (image.Store.Ensure; later calls read the
// store's disk only). An image from the cluster's own registry service
// (the reference's host names a service) is pulled from a ready container
// of that service, over the overlay.
//
// The pull's connections are made in the container's own network
// namespace (created and wired here, as ensureContainer would next): it
// has an overlay address, which the host's namespace does not have
// towards other hosts.
//
// The image's files are owned as the service's containers will see them
// (imageOwners): shifted into the cluster's id map for containers in a
// user namespace, as the image has them otherwise.
func (a *Agent) imageOf(ctx context.Context, c *spec.Cluster, hc overlay.HostConfig, svc spec.Service, link overlay.ContainerLink, status map[string]model.ContainerStatus) (image.Image, error) {
	src, err := spec.ParseImage(svc.Image)
	if err != nil {
		return image.Image{}, fmt.Errorf("image %q: %w", svc.Image, err)
	}
	opts := image.Options{Owners: a.imageOwners(c, svc)}
	if img, ok := a.images.Cached(src, opts.Owners); ok {
		return img, nil
	}
	if reg, ok := c.ServiceByName(src.RegistryHost()); ok {
		addr, err := registryAddr(src, reg, status)
		if err != nil {
			return image.Image{}, err
		}
		opts.Registry = addr
		opts.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if err := a.kernel.EnsureContainerNetns(link.Netns); err != nil {
				return nil, fmt.Errorf("creating network namespace to pull from: %w", err)
			}
			if err := a.kernel.AttachContainer(hc, link); err != nil {
				return nil, fmt.Errorf("wiring link to pull from: %w", err)
			}
			return nsthread.DialNamed(ctx, link.Netns, &net.Dialer{Timeout: 5 * time.Second}, network, addr)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()
	return a.images.Ensure(ctx, src, opts)
}

// imageOwners is how the service's image must be owned on this host: in
// the cluster's id map when its containers run in a user namespace, the
// image's own ids when they do not, and also when the runtime cannot give
// them one (no user namespaces in the kernel, a dynamically linked weft:
// runtime.UserNSFor; it then starts them without one, and says so).
func (a *Agent) imageOwners(c *spec.Cluster, svc spec.Service) image.Owners {
	m := userNSOf(c, svc)
	if !m.On() || a.rt.UserNSFor(m, true) != nil {
		return image.Owners{}
	}
	return image.Owners{HostBase: m.HostBase, Size: m.Size}
}

// registryAddr is ip:port of a ready container of the cluster's registry
// service reg; the port is the reference's, or the service's.
func registryAddr(src spec.ImageSource, reg spec.Service, status map[string]model.ContainerStatus) (string, error) {
	port := reg.Port
	if ref, err := name.ParseReference(src.Ref); err == nil {
		if _, p, err := net.SplitHostPort(ref.Context().RegistryStr()); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				port = n
			}
		}
	}
	if port == 0 {
		return "", fmt.Errorf("image %s: the registry service %s has no port; give it port: 5000, or write the port in the image reference", src, reg.Name)
	}
	var ready []netip.Addr
	for _, s := range status {
		if s.Service == reg.Name && s.Ready() {
			ready = append(ready, s.IP)
		}
	}
	if len(ready) == 0 {
		return "", fmt.Errorf("image %s: no healthy instance of the registry service %s to pull from yet", src, reg.Name)
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i].Less(ready[j]) })
	return netip.AddrPortFrom(ready[0], uint16(port)).String(), nil
}

// collectImages removes the images of this host that no container of it
// runs or is about to run (local ones waiting for their dependencies).
func (a *Agent) collectImages() {
	keep := map[string]bool{}
	a.mu.Lock()
	for _, r := range a.containers {
		keep[image.DigestOfRootFS(r.image)] = true
	}
	for _, rootfs := range a.pulled {
		keep[image.DigestOfRootFS(rootfs)] = true
	}
	a.mu.Unlock()
	removed, err := a.images.GC(keep)
	if err != nil {
		a.log.Warn("collecting unused images", "err", err)
	}
	for _, d := range removed {
		a.log.Info("removed unused image", "digest", d)
	}
}

// imageMissing reports a container whose image cannot be had yet: one
// still waiting for its dependencies (the cluster's registry among them)
// says so; otherwise the pull's error is its status. A container already
// running keeps running.
func (a *Agent) imageMissing(ctx context.Context, st statusStore, svc spec.Service, as model.Assignment, link overlay.ContainerLink, snap store.Snapshot, running bool, pullErr error) error {
	if running {
		return pullErr
	}
	base := model.ContainerStatus{
		Container: as.Container, Service: as.Service, Host: a.self.Name,
		IP: as.IP, MAC: as.MAC, Netns: link.Netns,
		State: model.StateFailed, Health: model.HealthStarting, Message: pullErr.Error(),
	}
	if ok, dep := dependenciesReady(svc, snap.Status); !ok {
		base.State, base.Message = model.StateWaiting, "waiting for a healthy instance of "+dep
		pullErr = nil
	}
	base.Updated = time.Now().UTC()
	if have, ok := snap.Status[as.Container]; !ok || !sameStatus(have, base) {
		if err := reportStatus(ctx, st, base); err != nil {
			return err
		}
	}
	return pullErr
}
