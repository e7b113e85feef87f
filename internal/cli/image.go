package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/image"
)

// newRegistryCmd runs a cluster's own image registry; it is meant to run
// as a container (`command: [weft, registry]`) that the hosts pull from.
func newRegistryCmd(g *globals) *cobra.Command {
	var cfg image.RegistryConfig
	var seedDir string
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run an image registry (go-containerregistry's) — as a container the cluster's hosts pull from",
		Long: `Run an OCI image registry over plain HTTP, as a service of the cluster.
Services name its images as <service>:<port>/<repository>:<tag>; each host
pulls them over the overlay. Push with crane or docker through a published
port (docs/images.md). --seed pushes every docker save tarball of a
directory into it at start; a relative directory is beside the weft binary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if seedDir != "" {
				if !filepath.IsAbs(seedDir) {
					exe, err := os.Executable()
					if err != nil {
						return fmt.Errorf("finding the weft binary for --seed %s: %w", seedDir, err)
					}
					seedDir = filepath.Join(filepath.Dir(exe), seedDir)
				}
				files, err := image.SeedFiles(seedDir)
				if err != nil {
					return &exitError{code: exitBadInput, err: fmt.Errorf("--seed %s: %w", seedDir, err)}
				}
				if len(files) == 0 {
					return &exitError{code: exitBadInput, err: fmt.Errorf("--seed %s: no *.tar files there; build them (make build) or leave --seed out", seedDir)}
				}
				cfg.Seed = files
			}
			cfg.Log = slog.New(slog.NewTextHandler(g.stderr, nil))
			return image.ServeRegistry(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.Listen, "listen", ":5000", "address to serve the registry on")
	cmd.Flags().StringVar(&cfg.BlobDir, "blobs", "", "directory for layers (a volume); default in memory")
	cmd.Flags().StringVar(&seedDir, "seed", "", "push the docker save tarballs (*.tar) of this directory at start")
	return cmd
}

// newImageCmd groups image commands.
func newImageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Build images without Docker"}
	cmd.AddCommand(newImageBuildCmd(g))
	return cmd
}

// newImageBuildCmd makes a one-layer image from files of this machine
// (Go binaries need nothing else) and writes it as a docker save tarball.
func newImageBuildCmd(g *globals) *cobra.Command {
	var (
		adds, env, entrypoint, cmdArgs []string
		cfg                            v1.Config
		tag, out                       string
	)
	cmd := &cobra.Command{
		Use:   "build --tag REPO:TAG --add SRC:DST ... -o FILE.tar",
		Short: "Build a one-layer image from files of this machine (no Docker) into a docker save tarball",
		Example: `  weft image build --tag shop/shop:v1 --add bin/shop-static:/app/shop \
    --entrypoint /app/shop --user 65534:65534 -o bin/images/shop.tar`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var entries []image.Entry
			for _, a := range adds {
				src, dst, ok := strings.Cut(a, ":")
				if !ok || src == "" || !filepath.IsAbs(dst) {
					return &exitError{code: exitBadInput, err: fmt.Errorf("--add %q: write SRC:DST with DST absolute in the image, e.g. bin/web:/app/web", a)}
				}
				entries = append(entries, image.Entry{Path: dst, Src: src})
			}
			// Every image gets a /tmp, as a base image would have.
			entries = append(entries, image.Entry{Path: "/tmp", Dir: true, Mode: os.ModeSticky | 0o777})
			cfg.Entrypoint, cfg.Cmd, cfg.Env = entrypoint, cmdArgs, env
			img, err := image.Build(entries, cfg)
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := image.WriteArchive(img, tag, out); err != nil {
				return err
			}
			d, err := img.Digest()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s %s %s\n", out, tag, d)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&adds, "add", nil, "SRC:DST: copy the file SRC of this machine to DST in the image (repeat)")
	f.StringArrayVar(&entrypoint, "entrypoint", nil, "the image's entrypoint (repeat for each argument)")
	f.StringArrayVar(&cmdArgs, "cmd", nil, "the image's cmd (repeat for each argument)")
	f.StringArrayVar(&env, "env", nil, "KEY=VALUE in the image's environment (repeat)")
	f.StringVar(&cfg.User, "user", "", "the image's user (uid[:gid] or a name of its /etc/passwd)")
	f.StringVar(&cfg.WorkingDir, "workdir", "", "the image's working directory")
	f.StringVar(&tag, "tag", "", "the image's name and tag, e.g. shop/shop:v1")
	f.StringVarP(&out, "output", "o", "", "the docker save tarball to write")
	_ = cmd.MarkFlagRequired("tag")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}
