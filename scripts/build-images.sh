#!/usr/bin/env bash
# Builds the shop's image without Docker (and the hello example's, below):
# the shop as a static Go binary in a one-layer image (weft image build, go-containerregistry), written
# as a docker save tarball to BIN/images/shop.tar, where the cluster's
# registry finds it (`weft registry --seed images`, beside the weft binary).
# busybox is its /bin/sh, so that a compose healthcheck can be a shell line
# (examples/seed000: `wget -q -O /dev/null http://localhost:8000/health || exit 1`,
# busybox's sh runs its own wget applet).
# Usage: scripts/build-images.sh [BIN]   (default bin; BIN/weft must exist)
set -euo pipefail
bin=${1:-bin}
go=${GO:-go}
repo=$(cd "$(dirname "$0")/.." && pwd)
# The shop is a module of its own (apps/shop/go.mod): built from there.
CGO_ENABLED=0 "$go" -C "$repo/apps/shop" build -o "$(cd "$bin" && pwd)/shop-static" ./cmd/shop
"$bin/weft" image build --tag shop/shop:v1 \
  --add "$bin/shop-static:/app/shop" --add /bin/busybox:/bin/sh --entrypoint /app/shop \
  --user 65534:65534 -o "$bin/images/shop.tar" >/dev/null

# The hello example as an image, for examples/compose (a docker compose
# file): the static hello binary and busybox (its wget is the healthcheck).
# Not in BIN/images: the shop's registry does not need it.
CGO_ENABLED=0 "$go" build -o "$bin/hello-static" ./examples/hello
"$bin/weft" image build --tag weft/hello:v1 \
  --add "$bin/hello-static:/app/hello" --add /bin/busybox:/bin/busybox \
  --entrypoint /app/hello --user 65534:65534 -o "$bin/hello-image.tar" >/dev/null
