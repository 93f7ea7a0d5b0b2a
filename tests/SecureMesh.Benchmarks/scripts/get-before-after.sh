#!/usr/bin/env bash
# Interleaved before/after comparison of `get-vs-ssh.sh`: runs it with the AFTER build, then the BEFORE build, PAIRS
# times (after, before, after, before, ...), each run RUNS get/ssh pairs of SIZE_MIB, and prints every run's
# "get speed / ssh speed" ratio and get CPU seconds per GiB, and the medians of both sides. Comparing each build's ratio to ssh measured in the same
# minute keeps the machine's changing load out of the comparison.
#
#   AFTER_DLL=…/securemesh.dll BEFORE_DLL=…/securemesh.dll get-before-after.sh [PAIRS] [RUNS] [SIZE_MIB]
#
# A build of an older commit without touching the repository: git archive COMMIT | tar -x -C DIR, then
# dotnet build DIR/src/SecureMesh.Cli -c Release.
set -euo pipefail
PAIRS=${1:-2}
RUNS=${2:-2}
SIZE=${3:-1024}
HERE=$(cd "$(dirname "$0")" && pwd)
: "${AFTER_DLL:?set AFTER_DLL}" "${BEFORE_DLL:?set BEFORE_DLL}"
after=(); before=(); acpu=(); bcpu=()
for i in $(seq 1 "$PAIRS"); do
  for side in after before; do
    dll=$AFTER_DLL; [ "$side" = before ] && dll=$BEFORE_DLL
    out=$(SECUREMESH_DLL="$dll" "$HERE/get-vs-ssh.sh" "$RUNS" "$SIZE")
    ratio=$(echo "$out" | sed -n 's/.*median of pairs: \([0-9.]*\)x/\1/p')
    cpu=$(echo "$out" | sed -n 's/^get CPU.*median \([0-9.]*\) s per GiB/\1/p')
    echo "pair $i $side: $(echo "$out" | grep '^get:' ) | $(echo "$out" | grep '^ssh:') | ratio ${ratio}x | get CPU ${cpu} s/GiB (load $(cut -d' ' -f1-3 /proc/loadavg))"
    if [ "$side" = after ]; then after+=("$ratio"); acpu+=("$cpu"); else before+=("$ratio"); bcpu+=("$cpu"); fi
  done
done
python3 - "${after[*]}" "${before[*]}" "${acpu[*]}" "${bcpu[*]}" <<'PY'
import statistics, sys
a, b, ac, bc = ([float(x) for x in arg.split()] for arg in sys.argv[1:5])
ma, mb = statistics.median(a), statistics.median(b)
print(f"median ratio to ssh: after {ma:.2f}x, before {mb:.2f}x; after / before = {ma / mb:.3f} (target >= 0.95)")
print(f"median get CPU: after {statistics.median(ac):.2f} s/GiB, before {statistics.median(bc):.2f} s/GiB")
PY
