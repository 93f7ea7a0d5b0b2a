#!/usr/bin/env bash
# The test command from README.md. On Debian it first installs what the tests drive for real when it is missing:
#   clamav (a real scanner verdict; the test makes its own signature with sigtool, no download),
#   nodejs + npm and the pinned js-libp2p packages in tests/interop (Noise interop),
#   tmux (the terminal UI in a real terminal), openssh-client (ssh-keygen key interop),
#   iproute2 (network namespaces), nftables (the NAT lab's home routers), curl and util-linux (setpriv: the control
#   socket refuses another uid), miniupnpd-nftables (a home router with PCP/NAT-PMP in a namespace; the backend
#   package alone carries no service and no debconf question, so nothing starts on this machine),
#   clang (links the Native AOT executable; Debian's clang brings binutils' ld and objcopy with it).
# Then it runs `dotnet test SecureMesh.sln` (extra arguments are passed on, e.g. --filter) and prints one summary line.
# With no extra arguments (or AOT=1) it then runs the AOT job: README's install command publishes the Native AOT
# executable once, and the tests that start a real `securemesh` run again against it (SECUREMESH_EXE); AOT=0 skips it.
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
# Any clang will do (SecureMesh.Cli.csproj finds clang or a versioned clang-NN such as Debian's clang-14).
command -v clang >/dev/null || compgen -c clang- | grep -E '^clang-[0-9]+$' >/dev/null || need+=(clang)
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
aot=$(mktemp -d)
trap 'rm -rf "$log" "$aot"' EXIT
set +e
dotnet test SecureMesh.sln "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The AOT job: the executable an install runs, published by README's install command (it must choose Native AOT here:
# clang is installed above), then the process tests against it. The tests that start a `securemesh` find it through
# SECUREMESH_EXE (tests/SecureMesh.IntegrationTests/SecureMeshProgram.cs).
aot_tests="FullyQualifiedName~SecureMesh.IntegrationTests.AotExecutableTests|FullyQualifiedName~SecureMesh.IntegrationTests.TuiStartTests"
aot_tests+="|FullyQualifiedName~SecureMesh.IntegrationTests.ProcessTransferTests|FullyQualifiedName~SecureMesh.IntegrationTests.ReadmeWalkthroughTests"
if [[ ${AOT:-$(($# == 0))} == 1 ]]; then
  started=$SECONDS
  echo "test.sh: AOT job: publishing with README's install command into $aot"
  set +e
  dotnet publish src/SecureMesh.Cli -c Release -r linux-x64 -o "$aot" 2>&1 | tee -a "$log" | grep -E "securemesh: publishing|error|->"
  published=${PIPESTATUS[0]}
  set -e
  echo "test.sh: AOT job: publish took $((SECONDS - started)) s"
  if [[ $published -ne 0 || ! -x $aot/securemesh || -e $aot/securemesh.dll ]]; then
    echo "test.sh: AOT job: the publish did not produce the Native AOT executable (exit $published; see above)" >&2
    status=1
    echo "Failed:     1 (the Native AOT publish)" >> "$log"
  else
    set +e
    SECUREMESH_EXE="$aot/securemesh" dotnet test tests/SecureMesh.IntegrationTests --no-build --filter "$aot_tests" 2>&1 | tee -a "$log"
    aot_status=${PIPESTATUS[0]}
    set -e
    ((aot_status == 0)) || status=$aot_status
    echo "test.sh: AOT job: $((SECONDS - started)) s in all"
  fi
else
  echo "test.sh: AOT job skipped (extra arguments given; AOT=1 runs it)"
fi

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
