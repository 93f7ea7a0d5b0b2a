#!/usr/bin/env bash
# End-to-end transfer benchmarks with real securemesh processes on loopback.
#
#   transfer-bench.sh get SIZE_MIB                 one seeder, unlimited: indexing speed, get rate, downloader peak RSS
#   transfer-bench.sh seeders N LIMIT SIZE_MIB     N seeders each limited to LIMIT (e.g. 20m) bytes/s by upload-limit
#
# Needs a Release build: dotnet build src/SecureMesh.Cli -c Release
# Everything lives in a temp folder that is removed at the end; seeders listen on 127.0.0.1 only.
set -euo pipefail
# SMX and SM(): the build to run (SECUREMESH_EXE, SECUREMESH_DLL or this checkout's Release build).
source "$(dirname "$0")/lib-program.sh"
WORK=$(mktemp -d /tmp/sm-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

peer_id() { SM --home "$1" id --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["peerId"])'; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

mode=${1:-get}
if [ "$mode" = get ]; then N=1; LIMIT=0; SIZE=${2:-1024}; else N=${2:-1}; LIMIT=${3:-20m}; SIZE=${4:-256}; fi

FILE="$WORK/payload.bin"
head -c $((SIZE * 1048576)) /dev/urandom > "$FILE"
SM --home "$WORK/dl" init </dev/null >/dev/null 2>&1
DLID=$(peer_id "$WORK/dl")
for i in $(seq 1 "$N"); do
  H="$WORK/s$i"
  SM --home "$H" init </dev/null >/dev/null 2>&1
  SM --home "$H" peers add "$DLID" --trust >/dev/null
  SM --home "$H" config set upload-limit "$LIMIT" >/dev/null
  if [ "$i" = 1 ]; then
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    SM --home "$H" share add "$FILE" --json > "$WORK/index.json"
    python3 - "$WORK/index.json" "$SIZE" <<'PY'
import json,sys; j=json.load(open(sys.argv[1])); mb=int(sys.argv[2])*1048576/1e6
print(f"indexing: {int(sys.argv[2])} MiB in {j['seconds']:.2f} s = {mb/j['seconds']:.0f} MB/s")
PY
  else
    SM --home "$H" share add "$FILE" >/dev/null
  fi
  PORT=$(free_port)
  # Started directly (not through the SM function) so that $! is the node's own PID and the trap can stop it.
  "${SMX[@]}" --home "$H" run --listen "127.0.0.1:$PORT" > "$WORK/s$i.log" 2>&1 &
  PIDS+=($!)
  SM --home "$WORK/dl" peers add "$(peer_id "$H")" --addr "127.0.0.1:$PORT" --trust >/dev/null
done
CID=$(SM --home "$WORK/s1" share list --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["files"][0]["contentId"])')
for i in $(seq 1 "$N"); do until grep -q "listening on" "$WORK/s$i.log"; do sleep 0.2; done; done

# CPU seconds (user + system) the seeders spend during the get, from /proc/PID/stat (clock ticks).
seeder_ticks() { local t=0 p; for p in "${PIDS[@]}"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
ticks0=$(seeder_ticks)
start=$(date +%s.%N)
/usr/bin/time -v "${SMX[@]}" --home "$WORK/dl" get "$CID" --out "$WORK/out" --json > "$WORK/get.json" 2> "$WORK/get.err"
end=$(date +%s.%N)
ticks1=$(seeder_ticks)
cmp "$FILE" "$WORK/out/payload.bin" && echo "released file is byte-identical"
python3 - "$WORK/get.json" <<'PY'
import json,sys; j=json.load(open(sys.argv[1]))
print(f"transfer rate (first to last chunk, as the engine measures it): {j['bytesPerSecond']/1e6:.1f} MB/s")
PY
rss=$(grep 'Maximum resident set size' "$WORK/get.err" | awk '{print $6}')
user=$(grep 'User time' "$WORK/get.err" | awk '{print $4}')
sys=$(grep 'System time' "$WORK/get.err" | awk '{print $4}')
echo "CPU: downloader ${user} s user + ${sys} s system; seeder(s) $(python3 -c "print(($ticks1-$ticks0)/$(getconf CLK_TCK))") s" 
python3 - "$start" "$end" "$SIZE" "$rss" "$N" "$LIMIT" <<'PY'
import sys
s,e,size,rss,n,limit=float(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]),int(sys.argv[5]),sys.argv[6]
mb=size*1048576/1e6; t=e-s
print(f"get: {size} MiB from {n} seeder(s) (upload-limit {limit}) in {t:.2f} s (whole command: start, connect, download, whole-file verify, release) = {mb/t:.0f} MB/s")
print(f"downloader peak RSS: {rss/1024:.0f} MiB")
PY
