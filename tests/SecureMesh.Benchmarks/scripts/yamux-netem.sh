#!/usr/bin/env bash
# One yamux stream vs iperf3 on a long fat path (issue 16): two network namespaces joined by a veth pair, 60 ms round
# trip, 1 Gbit/s. Rounds alternate iperf3 and yamux (SecureMesh.Benchmarks yamux-sink/yamux-source, one stream over
# plain TCP); prints each and the medians.
#
#   sudo tests/SecureMesh.Benchmarks/scripts/yamux-netem.sh [SECONDS] [ROUNDS]     (default 10 s, 3 rounds)
#
# The delay: netem (`delay 30ms rate 1gbit` on each veth end) when the kernel has sch_netem; otherwise (DELAY=forwarder,
# chosen by itself when netem is missing) `tbf rate 1gbit` on each veth end and a userspace forwarder in the server's
# namespace (SecureMesh.Benchmarks delay-forwarder) that holds every byte 30 ms in each direction, with a queue of
# QUEUE_MB (default 8, above the 3.75 MB bandwidth-delay product of one direction) per direction; iperf3 and yamux both
# go through it, so each round compares them on the same path.
#
# Needs root (namespaces, tc); installs iperf3 from Debian if missing. Creates nothing in the host's namespace but
# the two namespaces, removed on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
seconds="${1:-10}"
rounds="${2:-3}"
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces and tc)" >&2; exit 1; }
if ! command -v iperf3 >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 >/dev/null
fi
dotnet build tests/SecureMesh.Benchmarks -c Release -v quiet -nologo >/dev/null
bench="dotnet tests/SecureMesh.Benchmarks/bin/Release/net10.0/SecureMesh.Benchmarks.dll"

suffix=$(head -c 2 /dev/urandom | od -An -tx1 | tr -d ' \n')
a="smbench-$suffix-a"
b="smbench-$suffix-b"
va="s5p${suffix}a"
vb="s5p${suffix}b"
forwarder=
cleanup() {
  [[ -n "$forwarder" ]] && kill $forwarder 2>/dev/null || true
  ip netns pids "$a" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids "$b" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip link add name "$va" netns "$a" type veth peer name "$vb" netns "$b"
ip -n "$a" addr add 10.77.0.1/24 dev "$va"
ip -n "$b" addr add 10.77.0.2/24 dev "$vb"
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set "$va" up
ip -n "$b" link set "$vb" up
mode="${DELAY:-netem}"
if [[ "$mode" == netem ]]; then
  # 30 ms each way, 1 Gbit/s; a queue long enough for the bandwidth-delay product (60 ms at 1 Gbit/s = 7.5 MB = 5,000 packets).
  if ! tc -n "$a" qdisc add dev "$va" root netem delay 30ms rate 1gbit limit 20000 2>/dev/null; then
    echo "no sch_netem in this kernel: 1 Gbit/s with tbf and 30 ms each way in a userspace forwarder instead"
    mode=forwarder
  else
    tc -n "$b" qdisc add dev "$vb" root netem delay 30ms rate 1gbit limit 20000
  fi
fi
iperf_port=5201
yamux_port=5202
if [[ "$mode" == forwarder ]]; then
  for pair in "$a $va" "$b $vb"; do
    set -- $pair
    tc -n "$1" qdisc add dev "$2" root tbf rate 1gbit burst 1mb latency 50ms
  done
  fwd_out=$(mktemp)
  # Two forwarders in the server namespace: iperf3 through 5301 -> 5201, yamux through 5302 -> 5202.
  ip netns exec "$b" $bench delay-forwarder 5301 127.0.0.1 5201 30 "${QUEUE_MB:-8}" >"$fwd_out" &
  forwarder="$!"
  ip netns exec "$b" $bench delay-forwarder 5302 127.0.0.1 5202 30 "${QUEUE_MB:-8}" >>"$fwd_out" &
  forwarder="$forwarder $!"
  for _ in $(seq 1 100); do [[ $(grep -c LISTENING "$fwd_out") -ge 2 ]] && break; sleep 0.1; done
  iperf_port=5301
  yamux_port=5302
fi
# The kernel's TCP buffers must hold the bandwidth-delay product on both sides, for iperf3 and for us alike.
for ns in "$a" "$b"; do
  ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_rmem="4096 131072 33554432" net.ipv4.tcp_wmem="4096 16384 33554432"
done
if command -v ping >/dev/null; then ip netns exec "$a" ping -c 2 -q 10.77.0.2 | tail -1; fi

iperf_rates=()
yamux_rates=()
for round in $(seq 1 "$rounds"); do
  ip netns exec "$b" iperf3 -s -1 -p 5201 >/dev/null &
  server=$!
  sleep 1
  rate=$(ip netns exec "$a" iperf3 -c 10.77.0.2 -p "$iperf_port" -t "$seconds" -J | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))')
  wait "$server"
  iperf_rates+=("$rate")
  echo "round $round: iperf3 $rate Mbit/s"

  out=$(mktemp)
  ip netns exec "$b" $bench yamux-sink 5202 >"$out" &
  sink=$!
  for _ in $(seq 1 100); do grep -q LISTENING "$out" && break; sleep 0.1; done
  ip netns exec "$a" $bench yamux-source 10.77.0.2 "$yamux_port" "$seconds"
  wait "$sink"
  line=$(grep RECEIVED "$out")
  rm -f "$out"
  rate=$(sed -E 's/.*: ([0-9,]+) Mbit\/s.*/\1/' <<<"$line" | tr -d ,)
  yamux_rates+=("$rate")
  echo "round $round: one yamux stream $rate Mbit/s ($line)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mi=$(median "${iperf_rates[@]}")
my=$(median "${yamux_rates[@]}")
echo "median of $rounds rounds of $seconds s (60 ms RTT by $mode, 1 Gbit/s): iperf3 $mi Mbit/s, one yamux stream $my Mbit/s ($(awk -v y="$my" -v i="$mi" 'BEGIN { printf "%.1f", 100 * y / i }')%)"
