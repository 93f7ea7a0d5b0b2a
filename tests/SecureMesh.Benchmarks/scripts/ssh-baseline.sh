#!/usr/bin/env bash
# Baseline: pipe a SIZE_MIB file through ssh -c chacha20-poly1305@openssh.com over loopback.
# Starts a throwaway sshd on a high port with a generated host key and client key in a temp folder
# (needs openssh-server installed: apt-get install -y openssh-server; run as a user that may log in to itself).
set -euo pipefail
SIZE=${1:-1024}
WORK=$(mktemp -d /tmp/sm-ssh.XXXXXX)
SSHD_PID=
cleanup() { [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
source "$(dirname "$0")/lib-sshd.sh"
start_sshd "$WORK"
head -c $((SIZE * 1048576)) /dev/urandom > "$WORK/payload.bin"
start=$(date +%s.%N)
"${SSH[@]}" "cat > $WORK/received.bin" < "$WORK/payload.bin"
end=$(date +%s.%N)
cmp "$WORK/payload.bin" "$WORK/received.bin"
python3 -c "import sys;t=$end-$start;mb=$SIZE*1048576/1e6;print(f'ssh chacha20-poly1305: {$SIZE} MiB in {t:.2f} s = {mb/t:.0f} MB/s')"
