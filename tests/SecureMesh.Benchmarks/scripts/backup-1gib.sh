#!/usr/bin/env bash
# Backup and restore of SIZE_MIB (default 1024) of random data with real securemesh processes on loopback:
# one holder (`run`), the owner's `backup add --wait` (which runs its own node), then `restore` on a new home that
# has only the exported key. Prints MB/s, CPU seconds on each side, and the holder's disk use against the data.
#
#   backup-1gib.sh [SIZE_MIB]
#
# Needs a Release build: dotnet build src/SecureMesh.Cli -c Release
set -euo pipefail
# SMX and SM(): the build to run (SECUREMESH_EXE, SECUREMESH_DLL or this checkout's Release build).
source "$(dirname "$0")/lib-program.sh"
WORK=$(mktemp -d /tmp/sm-backup-bench.XXXXXX)
HOLDER_PID=""
cleanup() { [ -n "$HOLDER_PID" ] && kill "$HOLDER_PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
peer_id() { SM --home "$1" id --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["peerId"])'; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
holder_ticks() { awk '{print $14+$15}' "/proc/$HOLDER_PID/stat"; }
secs() { python3 -c "print(f'{($2-$1)/$(getconf CLK_TCK):.2f}')"; }

SIZE=${1:-1024}
mkdir -p "$WORK/data"
head -c $((SIZE * 1048576)) /dev/urandom > "$WORK/data/payload.bin"
SM --home "$WORK/owner" init </dev/null >/dev/null 2>&1
SM --home "$WORK/holder" init </dev/null >/dev/null 2>&1
OWNER=$(peer_id "$WORK/owner"); HOLDER=$(peer_id "$WORK/holder")
for h in owner holder; do SM --home "$WORK/$h" config set discovery off >/dev/null; done
SM --home "$WORK/holder" peers add "$OWNER" --trust >/dev/null
SM --home "$WORK/holder" backup offer "$OWNER" --quota $((SIZE * 2 + 64))m >/dev/null
PORT=$(free_port)
"${SMX[@]}" --home "$WORK/holder" run --listen "127.0.0.1:$PORT" > "$WORK/holder.log" 2>&1 &
HOLDER_PID=$!
until grep -q "listening on" "$WORK/holder.log"; do sleep 0.2; done
SM --home "$WORK/owner" peers add "$HOLDER" --addr "127.0.0.1:$PORT" --trust >/dev/null

t0=$(holder_ticks); s=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$WORK/backup.time" "${SMX[@]}" --home "$WORK/owner" backup add "$WORK/data" --to "$HOLDER" --wait >/dev/null
e=$(date +%s.%N); t1=$(holder_ticks)
read -r bu bs < "$WORK/backup.time"
held=$(du -sb "$WORK/holder/backup-held" | cut -f1)
python3 - "$s" "$e" "$SIZE" "$bu" "$bs" "$(secs "$t0" "$t1")" "$held" <<'PY'
import sys
s,e,size,u,sy,h,held=float(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]),float(sys.argv[4]),float(sys.argv[5]),float(sys.argv[6]),int(sys.argv[7])
mb=size*1048576/1e6; t=e-s; gib=size/1024
print(f"backup: {size} MiB in {t:.1f} s = {mb/t:.0f} MB/s (whole command: start, scan, seal, upload, catalog)")
print(f"  CPU per GiB: owner {(u+sy)/gib:.1f} s ({u:.1f} user + {sy:.1f} system), holder {h/gib:.1f} s")
print(f"  holder disk: {held} bytes for {size*1048576} bytes of data ({held/(size*1048576):.4f}x)")
PY

SM --home "$WORK/owner" keys export --format pkcs8 --out "$WORK/owner.key" >/dev/null 2>&1
SM --home "$WORK/new" keys import "$WORK/owner.key" >/dev/null
t0=$(holder_ticks); s=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$WORK/restore.time" "${SMX[@]}" --home "$WORK/new" restore --from "$HOLDER" --addr "127.0.0.1:$PORT" --to "$WORK/out" >/dev/null 2>"$WORK/restore.err"
e=$(date +%s.%N); t1=$(holder_ticks)
read -r ru rs < "$WORK/restore.time"
cmp "$WORK/data/payload.bin" "$WORK/out/data/payload.bin" && echo "restored file is byte-identical"
python3 - "$s" "$e" "$SIZE" "$ru" "$rs" "$(secs "$t0" "$t1")" <<'PY'
import sys
s,e,size,u,sy,h=float(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]),float(sys.argv[4]),float(sys.argv[5]),float(sys.argv[6])
mb=size*1048576/1e6; t=e-s; gib=size/1024
print(f"restore: {size} MiB in {t:.1f} s = {mb/t:.0f} MB/s (whole command: start, connect, catalog, fetch, verify, write)")
print(f"  CPU per GiB: restoring node {(u+sy)/gib:.1f} s ({u:.1f} user + {sy:.1f} system), holder {h/gib:.1f} s")
PY
