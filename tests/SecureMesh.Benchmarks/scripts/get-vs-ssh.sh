#!/usr/bin/env bash
# Paired end-to-end comparison on loopback: `securemesh get` of a SIZE_MIB file from a running seeder, against
# `ssh -c chacha20-poly1305@openssh.com 127.0.0.1 "cat > FILE" < FILE`, RUNS times each in turn (get, ssh, get, ...),
# after one warm-up of each. Each timed run is a whole command (a fresh `get` process: start, connect, transfer,
# whole-file check, release; a fresh ssh session: key exchange, transfer), each writing as it ships (`get` with direct
# I/O where the file system takes it, ssh's `cat` through the page cache), each starting with no output on disk and
# nothing left to write back (not timed). Prints each side's median and the median of the pairwise ratios, and the CPU
# seconds per GiB of the get (the get process, the seeder and, with MODE=node, the downloading node: steadier than the
# wall time on a shared machine).
#
#   get-vs-ssh.sh [RUNS] [SIZE_MIB]          NO_FSYNC=1 runs `get` under eatmydata (its periodic fsync a no-op)
#   MODE=node get-vs-ssh.sh ...               the downloader is a running node too (`securemesh run`, connected to the
#                                             seeder before timing starts, as a TUI user's node is); each timed `get` is
#                                             the CLI asking that node through its control socket and waiting for the
#                                             release. NO_FSYNC=1 then runs that node under eatmydata.
#
# Needs a Release build (dotnet build src/SecureMesh.Cli -c Release, or SECUREMESH_DLL=path/to/securemesh.dll for a
# published one) and openssh-server. Everything lives in a temp folder removed at the end; all on 127.0.0.1.
set -euo pipefail
RUNS=${1:-8}
SIZE=${2:-1024}
# SMX and SM(): the build to run (SECUREMESH_EXE, SECUREMESH_DLL or this checkout's Release build).
source "$(dirname "$0")/lib-program.sh"
WORK=$(mktemp -d /tmp/sm-vs.XXXXXX)
SEEDER_PID=
SSHD_PID=
NODE_PID=
cleanup() {
  for p in "$SEEDER_PID" "$SSHD_PID" "$NODE_PID"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
source "$(dirname "$0")/lib-sshd.sh"
peer_id() { SM --home "$1" id --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["peerId"])'; }

head -c $((SIZE * 1048576)) /dev/urandom > "$WORK/payload.bin"
SM --home "$WORK/s" init </dev/null >/dev/null 2>&1
SM --home "$WORK/dl" init </dev/null >/dev/null 2>&1
SM --home "$WORK/s" peers add "$(peer_id "$WORK/dl")" --trust >/dev/null
SM --home "$WORK/s" share add "$WORK/payload.bin" >/dev/null
CID=$(SM --home "$WORK/s" share list --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["files"][0]["contentId"])')
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"${SMX[@]}" --home "$WORK/s" run --listen "127.0.0.1:$PORT" > "$WORK/s.log" 2>&1 &
SEEDER_PID=$!
SM --home "$WORK/dl" peers add "$(peer_id "$WORK/s")" --addr "127.0.0.1:$PORT" --trust >/dev/null
until grep -q "listening on" "$WORK/s.log"; do sleep 0.2; done
start_sshd "$WORK"

GET=("${SMX[@]}" --home "$WORK/dl" get "$CID" --out "$WORK/out" --json)
EAT=()
if [ "${NO_FSYNC:-0}" = 1 ]; then EAT=(eatmydata); fi
if [ "${MODE:-}" = node ]; then
  NODE_PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  "${EAT[@]}" "${SMX[@]}" --home "$WORK/dl" run --listen "127.0.0.1:$NODE_PORT" > "$WORK/dl.log" 2>&1 &
  NODE_PID=$!
  until grep -q "established" "$WORK/dl.log"; do sleep 0.2; done
else
  GET=("${EAT[@]}" "${GET[@]}")
fi
# Before each timed command (not timed): both outputs deleted and dirty pages written out. A build writing through the
# page cache (as `get` did before direct I/O) otherwise left 1 GiB cached behind it and slowed the ssh run after it,
# which one writing with direct I/O did not: its get/ssh ratio was measured against a faster ssh.
settle() { rm -rf "$WORK/out" "$WORK/received.bin"; sync; }
# Seconds one command takes, output thrown away.
timed() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); python3 -c "print($e-$s)"; }
# CPU seconds (user + system) a running process has used so far.
cpu_of() { if [ -n "$1" ]; then awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; else echo 0; fi; }
# "WALL:CPU" of one get: its wall time, and the CPU seconds of the get process, the seeder and (MODE=node) the node.
run_get() {
  local s0 n0 w
  settle
  s0=$(cpu_of "$SEEDER_PID"); n0=$(cpu_of "$NODE_PID")
  w=$(timed /usr/bin/time -o "$WORK/cpu" -f "%U %S" "${GET[@]}")
  awk -v w="$w" -v s0="$s0" -v s1="$(cpu_of "$SEEDER_PID")" -v n0="$n0" -v n1="$(cpu_of "$NODE_PID")" \
    'END { print w ":" (s1 - s0 + n1 - n0 + $1 + $2) }' "$WORK/cpu"
}
run_ssh() { settle; timed "${SSH[@]}" "cat > $WORK/received.bin" < "$WORK/payload.bin"; }

run_get > /dev/null; cmp "$WORK/payload.bin" "$WORK/out/payload.bin"
run_ssh > /dev/null; cmp "$WORK/payload.bin" "$WORK/received.bin"
gets=(); sshs=()
for _ in $(seq 1 "$RUNS"); do gets+=("$(run_get)"); sshs+=("$(run_ssh)"); done
python3 - "$SIZE" "${NO_FSYNC:-0}" "${gets[*]}" "${sshs[*]}" "${MODE:-}" <<'PY'
import statistics, sys
size, nofsync, mode = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[5]
g = [float(x.split(":")[0]) for x in sys.argv[3].split()]; c = [float(x.split(":")[1]) for x in sys.argv[3].split()]
s = [float(x) for x in sys.argv[4].split()]
mb = size * 1048576 / 1e6
gm, sm = statistics.median(g), statistics.median(s)
ratio = statistics.median(b / a for a, b in zip(g, s))
print(f"{len(g)} pairs, {size} MiB, {'get through a running node' if mode == 'node' else 'one-off get process'}, "
      f"{'without fsync (eatmydata)' if nofsync else 'as shipped (fsync every 500 ms)'}")
print(f"get: median {gm:.2f} s = {mb / gm:.0f} MB/s (min {min(g):.2f}, max {max(g):.2f})")
print(f"ssh: median {sm:.2f} s = {mb / sm:.0f} MB/s (min {min(s):.2f}, max {max(s):.2f})")
print(f"get speed / ssh speed, median of pairs: {ratio:.2f}x")
print(f"get CPU (get process + seeder{' + node' if mode == 'node' else ''}): median {statistics.median(c) / (size / 1024):.2f} s per GiB")
PY
