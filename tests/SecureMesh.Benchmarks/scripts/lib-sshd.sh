# Sourced by the benchmark scripts: start_sshd DIR starts a throwaway sshd on 127.0.0.1 (high port, generated host and
# client keys in DIR, only chacha20-poly1305@openssh.com) and sets SSHD_PID and the SSH array (client command line).
# Needs openssh-server (apt-get install -y openssh-server).
start_sshd() {
  local dir=$1 port
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/client"
  cp "$dir/client.pub" "$dir/authorized_keys"; chmod 600 "$dir/authorized_keys"
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  cat > "$dir/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
PasswordAuthentication no
StrictModes no
UsePAM no
Ciphers chacha20-poly1305@openssh.com
CFG
  mkdir -p /run/sshd
  /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" &
  SSHD_PID=$!
  SSH=(ssh -p "$port" -i "$dir/client" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
       -c chacha20-poly1305@openssh.com 127.0.0.1)
  local i
  for i in $(seq 1 50); do "${SSH[@]}" true 2>/dev/null && return 0; sleep 0.1; done
  echo "sshd did not start: $(cat "$dir/sshd.log")" >&2
  return 1
}
