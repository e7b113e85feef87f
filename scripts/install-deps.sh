#!/usr/bin/env bash
# Installs the Debian packages the lab and the tests use, only when missing.
set -euo pipefail
need=()
command -v ip >/dev/null       || need+=(iproute2)
command -v nsenter >/dev/null  || need+=(util-linux)
command -v tcpdump >/dev/null  || need+=(tcpdump)
command -v ping >/dev/null     || need+=(iputils-ping)
command -v nft >/dev/null      || need+=(nftables)
command -v wget >/dev/null     || need+=(wget)
command -v sha256sum >/dev/null || need+=(coreutils)
command -v npm >/dev/null      || need+=(npm)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# newman runs the shop's Postman collection in the tests.
if ! command -v newman >/dev/null; then
  echo "installing: newman (npm)"
  npm install -g --no-audit --no-fund newman >/dev/null
fi
