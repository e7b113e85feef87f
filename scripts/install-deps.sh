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
# load generators and the baseline of `weft bench` (and its tests)
command -v iperf3 >/dev/null   || need+=(iperf3)
command -v wrk >/dev/null      || need+=(wrk)
command -v nginx >/dev/null    || need+=(nginx-light)
command -v keepalived >/dev/null || need+=(keepalived)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
# a static shell for the test images (docs/images.md)
[ -x /bin/busybox ] || need+=(busybox-static)
# a real sshd in each lab host for provider ssh's test (test/integration/ssh_test.go)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
# headless browser of the UI test (test/integration/ui_test.go, docs/ui.md)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Install without starting services (nginx would start on :80): weft
  # starts what it needs itself, inside the lab.
  policy=/usr/sbin/policy-rc.d
  created_policy=
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1; fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if [ -n "$created_policy" ]; then rm -f "$policy"; fi
fi
# newman runs the shop's Postman collection in the tests.
if ! command -v newman >/dev/null; then
  echo "installing: newman (npm)"
  npm install -g --no-audit --no-fund newman >/dev/null
fi
