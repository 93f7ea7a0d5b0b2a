#!/usr/bin/env bash
# Baseline: pipe a SIZE_MIB file through ssh -c chacha20-poly1305@openssh.com over loopback.
# Starts a throwaway sshd on a high port with a generated host key and client key in a temp folder
# (needs openssh-server installed: apt-get install -y openssh-server; run as a user that may log in to itself).
set -euo pipefail
SIZE=${1:-1024}
WORK=$(mktemp -d /tmp/sm-ssh.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/client"
cp "$WORK/client.pub" "$WORK/authorized_keys"; chmod 600 "$WORK/authorized_keys"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cat > "$WORK/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $WORK/host
AuthorizedKeysFile $WORK/authorized_keys
PidFile $WORK/sshd.pid
PasswordAuthentication no
StrictModes no
UsePAM no
Ciphers chacha20-poly1305@openssh.com
CFG
mkdir -p /run/sshd
/usr/sbin/sshd -D -f "$WORK/sshd_config" -E "$WORK/sshd.log" &
PID=$!
sleep 1
head -c $((SIZE * 1048576)) /dev/urandom > "$WORK/payload.bin"
SSH=(ssh -p "$PORT" -i "$WORK/client" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -c chacha20-poly1305@openssh.com 127.0.0.1)
"${SSH[@]}" true
start=$(date +%s.%N)
"${SSH[@]}" "cat > $WORK/received.bin" < "$WORK/payload.bin"
end=$(date +%s.%N)
cmp "$WORK/payload.bin" "$WORK/received.bin"
python3 -c "import sys;t=$end-$start;mb=$SIZE*1048576/1e6;print(f'ssh chacha20-poly1305: {$SIZE} MiB in {t:.2f} s = {mb/t:.0f} MB/s')"
