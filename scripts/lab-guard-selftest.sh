#!/usr/bin/env bash
# Proves that lab-guard catches a leak and passes a clean run, without any
# packet leaving the machine: the "real interface" is a veth pair inside a
# throwaway namespace, whose route for 10.99.0.0/16 leads out of it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ns="weftguard$$"
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip -n "$ns" link set lo up
ip -n "$ns" link add g0 type veth peer name g1
ip -n "$ns" addr add 192.0.2.10/24 dev g0
ip -n "$ns" link set g0 up
ip -n "$ns" link set g1 up
ip -n "$ns" route add 10.99.0.0/16 via 192.0.2.1 dev g0
# The gateway must resolve so that the packet is sent at all.
ip -n "$ns" neigh add 192.0.2.1 lladdr 02:00:00:00:00:01 dev g0 nud permanent

# A clean command passes.
"$here/lab-guard.sh" --netns "$ns" -- true
# A command that sends one packet towards a private address is caught.
set +e
"$here/lab-guard.sh" --netns "$ns" -- sh -c "ip netns exec $ns ping -c1 -W1 10.99.0.1 >/dev/null; true" 2>/dev/null
status=$?
set -e
if [ "$status" -ne 3 ]; then
  echo "lab-guard self-test: a leak was not caught (exit $status, want 3)" >&2
  exit 1
fi
# The command's own failure wins over a clean capture.
set +e
"$here/lab-guard.sh" --netns "$ns" -- false
status=$?
set -e
if [ "$status" -ne 1 ]; then
  echo "lab-guard self-test: a failing command was reported as $status, want 1" >&2
  exit 1
fi
echo "lab-guard self-test: passed"
