#!/usr/bin/env bash
# The test command from README.md. On Debian it first installs what the tests drive for real when it is missing:
#   clamav (a real scanner verdict; the test makes its own signature with sigtool, no download),
#   nodejs + npm and the pinned js-libp2p packages in tests/interop (Noise interop),
#   tmux (the terminal UI in a real terminal), openssh-client (ssh-keygen key interop),
#   iproute2 (network namespaces), nftables (the NAT lab's home routers), curl and util-linux (setpriv: the control
#   socket refuses another uid), miniupnpd-nftables (a home router with PCP/NAT-PMP in a namespace; the backend
#   package alone carries no service and no debconf question, so nothing starts on this machine).
# Then it runs `dotnet test SecureMesh.sln` (extra arguments are passed on, e.g. --filter) and prints one summary line.
# Tests that need root (network namespaces, another uid) are reported as skipped for a non-root user.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

need=()
command -v clamscan >/dev/null && command -v sigtool >/dev/null || need+=(clamav)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v tmux >/dev/null || need+=(tmux)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v curl >/dev/null || need+=(curl)
command -v setpriv >/dev/null || need+=(util-linux)
[[ -x /usr/sbin/miniupnpd ]] || need+=(miniupnpd-nftables)
if ((${#need[@]})); then
  if ! command -v apt-get >/dev/null; then
    echo "test.sh: missing ${need[*]} and no apt-get to install them; install them by hand" >&2
    exit 1
  fi
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "test.sh: installing ${need[*]} needs root or sudo" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "test.sh: installing ${need[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# js-libp2p for the interop tests, versions pinned by the lock file; again only when the lock file changed.
if [[ -f tests/interop/package-lock.json && ! tests/interop/node_modules/.package-lock.json -nt tests/interop/package-lock.json ]]; then
  echo "test.sh: installing the pinned js-libp2p packages in tests/interop"
  npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: not root: the tests that need root (network namespaces, another uid) will show as skipped"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test SecureMesh.sln "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One closing line for the whole run, summed over the test projects.
sum() { grep -oE "$1: +[0-9]+" "$log" | awk '{s+=$2} END {print s+0}'; }
passed=$(sum Passed)
failed=$(sum Failed)
skipped=$(sum Skipped)
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [[ $status -eq 0 && $passed -eq 0 ]]; then
  echo "no test ran" >&2
  exit 1
fi
exit "$status"
