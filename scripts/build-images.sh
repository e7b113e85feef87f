#!/usr/bin/env bash
# Builds the shop's image without Docker: the shop as a static Go binary
# in a one-layer image (weft image build, go-containerregistry), written
# as a docker save tarball to BIN/images/shop.tar, where the cluster's
# registry finds it (`weft registry --seed images`, beside the weft binary).
# Usage: scripts/build-images.sh [BIN]   (default bin; BIN/weft must exist)
set -euo pipefail
bin=${1:-bin}
go=${GO:-go}
CGO_ENABLED=0 "$go" build -o "$bin/shop-static" ./apps/shop/cmd/shop
"$bin/weft" image build --tag shop/shop:v1 \
  --add "$bin/shop-static:/app/shop" --entrypoint /app/shop \
  --user 65534:65534 -o "$bin/images/shop.tar" >/dev/null
