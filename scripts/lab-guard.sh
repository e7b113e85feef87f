#!/usr/bin/env bash
# lab-guard: run a command while capturing on this machine's real interfaces,
# and fail if any packet to or from a private range crossed them (the lab's
# prefixes are private ranges; the safety rule says lab traffic never leaves
# the machine). The machine's own resolvers are allowed.
#
#   scripts/lab-guard.sh [--netns NS] [--allow ADDR]... -- CMD [ARGS...]
#
# --netns runs the capture inside a named network namespace instead of the
# root one (the guard's own self-test uses it). Exit status: the command's,
# or 3 when the command passed but a packet was seen (they are printed).
set -euo pipefail

netns=""
allow=()
while [ $# -gt 0 ]; do
  case "$1" in
    --netns) netns="$2"; shift 2 ;;
    --allow) allow+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "lab-guard: unknown option $1 (usage: lab-guard.sh [--netns NS] [--allow ADDR]... -- CMD...)" >&2; exit 2 ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "lab-guard: no command given (usage: lab-guard.sh [--netns NS] [--allow ADDR]... -- CMD...)" >&2
  exit 2
fi
command -v tcpdump >/dev/null || { echo "lab-guard: tcpdump is missing: run scripts/install-deps.sh first" >&2; exit 2; }

# The machine's own resolvers are the one private peer allowed; the
# machine's own addresses are allowed as the other end (on a machine whose
# own address is private, its traffic to the internet is not a leak).
while read -r key addr _; do
  if [ "$key" = nameserver ]; then allow+=("$addr"); fi
done < /etc/resolv.conf
run_in=()
if [ -n "$netns" ]; then run_in=(ip netns exec "$netns"); fi
own=()
while read -r addr; do own+=("${addr%/*}"); done < <("${run_in[@]}" ip -4 -o addr show scope global | awk '{print $4}')

ranges=(10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10 169.254.0.0/16)
src="(src net ${ranges[0]}"
dst="(dst net ${ranges[0]}"
for r in "${ranges[@]:1}"; do src="$src or src net $r"; dst="$dst or dst net $r"; done
src="$src)"
dst="$dst)"
for a in "${allow[@]}" "${own[@]}"; do
  case "$a" in *:*) continue ;; esac # the private ranges checked are IPv4
  src="$src and not src host $a"
  dst="$dst and not dst host $a"
done
filter="($src) or ($dst)"

work=$(mktemp -d /tmp/lab-guard.XXXXXX)
pcap="$work/leaks.pcap"
# -i any: every interface of the namespace, including one that should never
# exist there. -U: write each packet at once, so nothing is lost at the end.
"${run_in[@]}" tcpdump -i any -nn -U -w "$pcap" "$filter" 2>"$work/tcpdump.err" &
dump=$!
cleanup() { kill "$dump" 2>/dev/null || true; wait "$dump" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/tcpdump.err" 2>/dev/null && break
  if ! kill -0 "$dump" 2>/dev/null; then
    echo "lab-guard: tcpdump did not start:" >&2; cat "$work/tcpdump.err" >&2; exit 2
  fi
  sleep 0.1
done
grep -q "listening on" "$work/tcpdump.err" || { echo "lab-guard: tcpdump is not capturing after 10 s" >&2; exit 2; }
echo "lab-guard: capturing on the real interfaces${netns:+ of $netns} (filter: $filter)"

set +e
"$@"
status=$?
set -e

sleep 0.5 # let the last packets be written
cleanup
trap - EXIT
leaks=$(tcpdump -nn -r "$pcap" 2>/dev/null | wc -l)
if [ "$leaks" -gt 0 ]; then
  echo "lab-guard: $leaks packet(s) to or from a private range crossed a real interface:" >&2
  tcpdump -nn -r "$pcap" 2>/dev/null | head -50 >&2
  echo "lab-guard: capture kept in $pcap" >&2
  [ "$status" -ne 0 ] && exit "$status"
  exit 3
fi
rm -rf "$work"
echo "lab-guard: no packet to or from a private range crossed a real interface"
exit "$status"
