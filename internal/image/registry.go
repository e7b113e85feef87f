package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RegistryConfig is a cluster's own image registry, run as a service
// (`weft registry`): go-containerregistry's registry, plain HTTP.
type RegistryConfig struct {
	Listen string // e.g. ":5000"
	// BlobDir keeps the layers on disk (a volume); "" keeps them in memory.
	// Manifests are always in memory (go-containerregistry's registry):
	// after a restart, images are pushed again (Seed does it by itself).
	BlobDir string
	// Seed lists `docker save` tarballs pushed into the registry, under
	// the tags they carry, before it reports healthy.
	Seed []string
	Log  *slog.Logger
}

// ServeRegistry serves the registry until ctx is done. Until the seed
// tarballs are pushed, requests from other than loopback get 503, so a
// health check (http: /v2/) passes only once every seeded image is there.
func ServeRegistry(ctx context.Context, cfg RegistryConfig) error {
	logger := cfg.Log
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []registry.Option{registry.Logger(log.New(slogWriter{logger}, "", 0))}
	if cfg.BlobDir != "" {
		if err := os.MkdirAll(cfg.BlobDir, 0o755); err != nil {
			return fmt.Errorf("creating the registry's blob directory: %w", err)
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(cfg.BlobDir)))
	}
	var seeded atomic.Bool
	reg := registry.New(opts...)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !seeded.Load() && !fromLoopback(r) {
			http.Error(w, "seeding", http.StatusServiceUnavailable)
			return
		}
		reg.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	port := ln.Addr().(*net.TCPAddr).Port
	if err := seed(ctx, fmt.Sprintf("127.0.0.1:%d", port), cfg.Seed, logger); err != nil {
		srv.Close()
		return err
	}
	seeded.Store(true)
	logger.Info("registry serving", "listen", ln.Addr().String(), "seeded", len(cfg.Seed))
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// SeedFiles lists the *.tar files of dir, sorted.
func SeedFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

// seed pushes every image of the tarballs, under each of its tags, into
// the registry at addr.
func seed(ctx context.Context, addr string, files []string, logger *slog.Logger) error {
	for _, f := range files {
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(f) })
		if err != nil {
			return fmt.Errorf("seeding the registry from %s: reading the tarball's manifest: %w", f, err)
		}
		for _, desc := range m {
			for _, tagStr := range desc.RepoTags {
				tag, err := name.NewTag(tagStr)
				if err != nil {
					return fmt.Errorf("seeding the registry from %s: tag %q: %w", f, tagStr, err)
				}
				img, err := tarball.ImageFromPath(f, &tag)
				if err != nil {
					return fmt.Errorf("seeding the registry from %s: %w", f, err)
				}
				dst, err := name.NewTag(addr+"/"+tag.RepositoryStr()+":"+tag.TagStr(), name.Insecure)
				if err != nil {
					return err
				}
				if err := remote.Write(dst, img, remote.WithContext(ctx)); err != nil {
					return fmt.Errorf("seeding the registry with %s from %s: %w", tagStr, f, err)
				}
				logger.Info("seeded image", "tag", tag.RepositoryStr()+":"+tag.TagStr(), "from", f)
			}
		}
	}
	return nil
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// slogWriter turns the registry's log lines into debug records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(string(p))
	return len(p), nil
}
