#!/usr/bin/env bash
# The longer fuzz run (issue 9), outside CI: coverage-guided fuzzing of one target (or all) with AFL++, through
# SharpFuzz's instrumentation of SecureMesh.Core.dll. Prints AFL++'s execs_done for each target. See README.md.
#
#   tests/SecureMesh.Fuzz/run-fuzz.sh TARGET|all [SECONDS]            AFL++ (default 300 s per target)
#   tests/SecureMesh.Fuzz/run-fuzz.sh --cscheck TARGET|all [SECONDS]  no AFL++: CsCheck mutation fuzzing
#
# Targets: frame, handshake, payload, wire, manifest, multiaddr. Everything it makes goes to artifacts/fuzz/ (ignored by git):
# bin/ (the instrumented build), tools/ (sharpfuzz), TARGET/findings/default/{crashes,hangs,queue,fuzzer_stats}.
# Installs what it lacks: afl++ from Debian (needs root), the SharpFuzz.CommandLine tool from NuGet.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

usage() {
  sed -n '5,6p' "$0" | sed 's/^# *//' >&2
  exit 2
}

mode=afl
if [[ "${1:-}" == "--cscheck" ]]; then
  mode=cscheck
  shift
fi
[[ $# -ge 1 && $# -le 2 ]] || usage
all_targets=(frame handshake payload wire manifest multiaddr)
if [[ "$1" == all ]]; then
  targets=("${all_targets[@]}")
else
  [[ " ${all_targets[*]} " == *" $1 "* ]] || { echo "unknown target '$1' (known: ${all_targets[*]})" >&2; exit 2; }
  targets=("$1")
fi
seconds="${2:-300}"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || usage

out="$PWD/artifacts/fuzz"
bin="$out/bin"
sharpfuzz_version=2.3.0

if [[ $mode == cscheck ]]; then
  dotnet build tests/SecureMesh.Fuzz -c Release -v quiet -nologo >/dev/null
  for target in "${targets[@]}"; do
    dotnet tests/SecureMesh.Fuzz/bin/Release/net10.0/SecureMesh.Fuzz.dll "$target" "$seconds"
  done
  exit 0
fi

# AFL++ from Debian's archive.
if ! command -v afl-fuzz >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "afl-fuzz is missing: install the Debian package afl++ (as root), or use --cscheck" >&2
    exit 1
  fi
  echo "installing afl++"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends afl++ >/dev/null
fi

# The SharpFuzz instrumenter, as a dotnet tool kept in artifacts/.
sharpfuzz="$out/tools/sharpfuzz"
if [[ ! -x "$sharpfuzz" ]]; then
  dotnet tool install SharpFuzz.CommandLine --version "$sharpfuzz_version" --tool-path "$out/tools" >/dev/null
fi

# A fresh build, then instrument only SecureMesh.Core.dll: the parsers' branches are what AFL++ should see (not the
# harness, not NSec or the base library). Instrumenting twice fails, hence the fresh output folder.
rm -rf "$bin"
dotnet publish tests/SecureMesh.Fuzz -c Release -o "$bin" -v quiet -nologo >/dev/null
"$sharpfuzz" "$bin/SecureMesh.Core.dll" >/dev/null

# AFL++ runs `dotnet` itself, which carries no AFL instrumentation marker: skip that check. The machine's core
# pattern and CPU governor are not ours to change; no UI (logs stay readable); no CPU pinning (the machine is shared).
export AFL_SKIP_BIN_CHECK=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
export AFL_FORKSRV_INIT_TMOUT=60000

status=0
for target in "${targets[@]}"; do
  work="$out/$target"
  rm -rf "$work"
  dotnet "$bin/SecureMesh.Fuzz.dll" seeds "$target" "$work/seeds" >/dev/null
  echo "fuzzing $target for $seconds s (AFL++, output in ${work#"$PWD"/})"
  # -t 1000: a fixed 1 s bound per input. Not AFL++'s auto-scaled one ("1000+"): it picks some 20 ms here, a GC pause
  # or a busy machine exceeds that, and SharpFuzz's fork-server stand-in then reports the kill as a crash of whatever
  # input ran next. -m none: the .NET runtime reserves far more address space than it uses. -V: stop after SECONDS.
  SECUREMESH_FUZZ_EXCEPTION_LOG="$work/exceptions.log" \
  afl-fuzz -i "$work/seeds" -o "$work/findings" -t 1000 -m none -V "$seconds" \
    -- dotnet "$bin/SecureMesh.Fuzz.dll" afl "$target" >"$work/afl.log" 2>&1 || {
      echo "afl-fuzz failed for $target; the end of its log:" >&2
      tail -n 30 "$work/afl.log" >&2
      status=1
      continue
    }
  stats="$work/findings/default/fuzzer_stats"
  field() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  crashes=$(find "$work/findings/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
  hangs=$(find "$work/findings/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
  echo "$target: execs_done $(field execs_done) in $(field run_time) s ($(field execs_per_sec)/s), corpus $(field corpus_count), edges $(field edges_found), crashes $crashes, hangs $hangs"
  if ((crashes + hangs > 0)); then
    status=1
    echo "  the exceptions: ${work#"$PWD"/}/exceptions.log; replay the inputs:"
    echo "  dotnet ${bin#"$PWD"/}/SecureMesh.Fuzz.dll replay $target ${work#"$PWD"/}/findings/default/crashes ${work#"$PWD"/}/findings/default/hangs"
  fi
done
exit "$status"
